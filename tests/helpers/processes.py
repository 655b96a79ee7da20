"""Real background processes for tests: the installed commands, their environment, ports."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


class Processes:
    """Background processes, each in its own session so their children die with them."""

    def __init__(self) -> None:
        self.running: list[subprocess.Popen] = []

    def start(self, args: list[str], log: Path, **kwargs) -> subprocess.Popen:
        handle = open(log, "w")
        process = subprocess.Popen(
            args, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True, **kwargs
        )
        self.running.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.running:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for process in self.running:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def wait_for_port(process: subprocess.Popen, port: int, timeout_s: float = 120) -> None:
    """Until `process` listens on `port` (or exits): `flwr run` does not retry a SuperLink
    that is still starting, which takes a while on a loaded machine."""
    deadline = time.monotonic() + timeout_s
    while process.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"nothing listens on port {port} after {timeout_s:.0f}s"
                ) from None
            time.sleep(0.2)


def run_collecting_leftovers(
    args: list[str], *, report: Path, timeout: float, **kwargs
) -> tuple[subprocess.CompletedProcess, list[str]]:
    """`args` run to the end, and the command lines of the processes it left running (its
    descendants, orphaned or not, which are then killed): see tests/helpers/reaper.py."""
    result = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("reaper.py")), str(report), "--", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )
    return result, json.loads(report.read_text())
