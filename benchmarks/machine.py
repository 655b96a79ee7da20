"""What a benchmark's result file says about where it ran: the commit and the machine."""

import json
import os
import platform
import subprocess
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def commit() -> str:
    """The checkout's short commit hash, marked `+changes` when files differ from it."""
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=REPO,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return f"{head}+changes" if dirty else head


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine_description(device: str = "cpu") -> str:
    """CPU cores and model, torch version, and the GPU when the benchmark used one."""
    text = f"{os.cpu_count()} cores ({cpu_model()}), torch {torch.__version__}"
    if device != "cpu" and torch.cuda.is_available():
        text += f", GPU {torch.cuda.get_device_name(0)}"
    return text


def write_result(path: Path, *, device: str, **fields) -> None:
    """A benchmark's result file: its fields with the commit, the date and the machine."""
    result = {
        **fields,
        "commit": commit(),
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine_description(device),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
