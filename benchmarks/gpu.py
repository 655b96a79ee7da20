"""The GPU benchmark in one go: each measure on the GPU and the same on the CPU, and the ratio.

- the DP discriminator step's cost against a non-private one at 28, 64 and 128 px
  (benchmarks/dp_step_cost.py);
- the PneumoniaMNIST epsilon-10 preset's wall time, the sites' releases and the server's fit
  (`privsynth run pneumoniamnist`);
- a 30-site phantom simulation's time per round (benchmarks/site_scaling.py);
- a seeded non-private computation (the server's generator fit to a fixed release) on both
  devices: the largest difference between the generated pixels, against TOLERANCE.

On a machine without a GPU it runs the CPU half and says so. `--quick` shrinks every measure
(fewer steps, sites and frequencies) so that the whole script runs in a few minutes on a
2-core CPU; the test suite runs it that way.

usage: benchmarks/gpu.sh NPZ [--quick] [--out benchmarks/results/gpu.json]
       (= .venv/bin/python benchmarks/gpu.py --pneumoniamnist NPZ ...)
"""

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# A sibling module: this folder is on sys.path when the script runs.
from machine import write_result  # noqa: E402

from common.config import load_config  # noqa: E402
from common.mean_embedding import features_for  # noqa: E402
from common.models import build_generator  # noqa: E402
from common.run_folder import RunFolder  # noqa: E402
from server.mean_embedding import fit_generator  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULT = REPO / "benchmarks" / "results" / "gpu.json"
# Generated pixels lie in [-1, 1]; a seeded fit on a GPU agrees with the CPU's to this.
TOLERANCE = 1e-3


def sizes(quick: bool) -> dict:
    if quick:
        return {
            "resolutions": "28,64",
            "dp_steps": 3,
            "dp_repeats": 1,
            "preset": ["mean_embedding.frequencies=256", "mean_embedding.generator_steps=5"],
            "sites": 4,
            "rounds": 2,
            "local_steps": 3,
            "fit_steps": 5,
        }
    return {
        "resolutions": "28,64,128",
        "dp_steps": 10,
        "dp_repeats": 3,
        "preset": [],
        "sites": 30,
        "rounds": 3,
        "local_steps": 20,
        "fit_steps": 50,
    }


def script(name: str, *args: str) -> list[str]:
    return [sys.executable, str(REPO / "benchmarks" / name), *args]


def dp_step_rows(device: str, size: dict, scratch: Path) -> dict[str, str]:
    """The private/non-private ratio per architecture and resolution."""
    out = scratch / f"dp-step-{device}.json"
    command = script("dp_step_cost.py", "--device", device, "--resolutions", size["resolutions"])
    command += ["--steps", str(size["dp_steps"]), "--repeats", str(size["dp_repeats"])]
    command += ["--out", str(out)]
    subprocess.run(command, check=True, cwd=REPO)
    result = json.loads(out.read_text())
    columns = result["columns"]
    rows = {}
    for row in result["rows"]:
        cells = dict(zip(columns, row))
        name = f"DP step / non-private, {cells['architecture']} {cells['resolution']} px"
        rows[name] = cells["ratio"]
        rows[f"DP step ms, {cells['architecture']} {cells['resolution']} px"] = cells[
            "private ms/step"
        ]
    return rows


def preset_seconds(npz: Path, device: str, size: dict, scratch: Path) -> dict[str, str]:
    """`privsynth run pneumoniamnist` at epsilon 10: the whole command's wall time."""
    run_dir = scratch / f"pneumoniamnist-{device}"
    overrides = [f"data.medmnist.path={npz.resolve()}", f"runtime.device={device}"]
    overrides += size["preset"]
    command = [sys.executable, "-m", "cli.main", "run", "pneumoniamnist"]
    command += [arg for pair in overrides for arg in ("--set", pair)]
    command += ["--run-dir", str(run_dir)]
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    training = RunFolder(run_dir).read_summary()["training_time_s"]
    return {
        "pneumoniamnist epsilon 10, wall s": f"{wall:.0f}",
        "pneumoniamnist epsilon 10, releases and fit s": f"{training:.0f}",
    }


def sites_round_seconds(device: str, size: dict, scratch: Path) -> dict[str, str]:
    out = scratch / f"sites-{device}.json"
    command = script("site_scaling.py", "--sites", str(size["sites"]), "--device", device)
    command += ["--rounds", str(size["rounds"]), "--local-steps", str(size["local_steps"])]
    command += ["--out", str(out)]
    subprocess.run(command, check=True, cwd=REPO)
    result = json.loads(out.read_text())
    cells = dict(zip(result["columns"], result["rows"][0]))
    return {f"{size['sites']} phantom sites, s per round": cells["time per round s"]}


def seeded_fit(device: str, steps: int) -> torch.Tensor:
    """Images from the server's fit of one generator to a fixed, seeded release, on `device`."""
    config = load_config(
        "pneumoniamnist",
        [
            f"mean_embedding.generator_steps={steps}",
            "mean_embedding.frequencies=512",
            "model.generator_components=1",
        ],
    )
    resolution = config.data.resolution
    dim = features_for(config)(torch.zeros(1, 1, resolution, resolution)).shape[1]
    rng = torch.Generator().manual_seed(0)
    release = {
        "feature_sums": 100 * torch.randn(2, dim, generator=rng),
        "counts": torch.tensor([100.0, 100.0]),
    }
    torch.manual_seed(0)
    generator = build_generator(2, resolution, config.model)
    state, _ = fit_generator(
        config, 2, False, generator.state_dict(), [release], False, device=torch.device(device)
    )
    generator.load_state_dict(state)
    z = torch.randn(16, config.model.latent_dim, generator=rng)
    with torch.no_grad():
        return generator(z, torch.eye(2)[torch.arange(16) % 2])


def measure(device: str, npz: Path, size: dict, scratch: Path) -> dict[str, str]:
    print(f"-- {device}", flush=True)
    return {
        **dp_step_rows(device, size, scratch),
        **preset_seconds(npz, device, size, scratch),
        **sites_round_seconds(device, size, scratch),
    }


def ratio(cpu: str, gpu: str) -> str:
    try:
        return f"{float(cpu.split()[0]) / float(gpu.split()[0]):.1f}"
    except (ValueError, ZeroDivisionError):
        return "–"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pneumoniamnist", type=Path, required=True, help="pneumoniamnist.npz")
    parser.add_argument("--quick", action="store_true", help="small sizes (a CPU check)")
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args()
    if not args.pneumoniamnist.exists():
        raise SystemExit(f"--pneumoniamnist {args.pneumoniamnist}: no such file")
    size = sizes(args.quick)
    has_gpu = torch.cuda.is_available()
    with tempfile.TemporaryDirectory(prefix="gpu-benchmark-") as scratch:
        cpu = measure("cpu", args.pneumoniamnist, size, Path(scratch))
        gpu = measure("cuda", args.pneumoniamnist, size, Path(scratch)) if has_gpu else {}
    if has_gpu:
        difference = seeded_fit("cuda", size["fit_steps"]) - seeded_fit("cpu", size["fit_steps"])
        agreement = f"{difference.abs().max().item():.1e} (tolerance {TOLERANCE:g})"
    else:
        agreement = "no GPU"
    columns = ["measure", "GPU", "CPU", "CPU / GPU"]
    rows = [
        [name, gpu.get(name, "no GPU"), value, ratio(value, gpu[name]) if gpu else "–"]
        for name, value in cpu.items()
    ]
    rows.append(["seeded fit, largest pixel difference GPU vs CPU", agreement, "–", "–"])
    print("| " + " | ".join(columns) + " |\n|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(map(str, row)) + " |")
    write_result(
        args.out,
        device="cuda" if has_gpu else "cpu",
        benchmark="gpu",
        title="GPU against CPU" if has_gpu else "GPU against CPU (no GPU was available)",
        command=shlex.join(
            ["benchmarks/gpu.sh", str(args.pneumoniamnist), *(["--quick"] if args.quick else [])]
        ),
        note="no GPU was available: the CPU half only" if not has_gpu else "",
        columns=columns,
        rows=rows,
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
