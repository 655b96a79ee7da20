"""Time per round and peak memory of a simulated federation as the number of sites grows.

Runs `privsynth run` on the quickstart preset's phantom population (DP-GAN, epsilon 10) with
N sites for a few short rounds, and samples the proportional set size (PSS: shared pages
split among the processes sharing them) summed over every process of the run (privsynth,
Flower's SuperLink and simulation, Ray and its site actors) once a second.

usage: .venv/bin/python benchmarks/site_scaling.py [--sites 3,10,30] [--rounds 3]
           [--local-steps 20] [--device cpu] [--out benchmarks/results/site-scaling.json]
"""

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# A sibling module: this folder is on sys.path when the script runs.
from machine import write_result  # noqa: E402

from common.run_folder import RunFolder  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULT = REPO / "benchmarks" / "results" / "site-scaling.json"
GIB = 2**30
MACHINE_GIB = 24  # the reference machine's memory


def sites_that_fit(results: list[dict], *, memory_gib: float) -> tuple[float, float, int]:
    """(base GiB, GiB per site, sites within memory_gib) from a least-squares line through
    the measured peaks."""
    sites = [r["sites"] for r in results]
    peaks = [r["peak_gib"] for r in results]
    mean_sites, mean_peak = sum(sites) / len(sites), sum(peaks) / len(peaks)
    spread = sum((n - mean_sites) ** 2 for n in sites)
    slope = sum((n - mean_sites) * (g - mean_peak) for n, g in zip(sites, peaks)) / spread
    base = mean_peak - slope * mean_sites
    return base, slope, int((memory_gib - base) / slope) if slope > 0 else -1  # -1: no limit


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # the process ended while we looked
        children.setdefault(ppid, []).append(int(entry.name))
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack += children.get(pid, [])
    return found


def pss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def run_federation(sites: int, args: argparse.Namespace, scratch: Path) -> dict:
    run_dir = scratch / f"sites-{sites}"
    overrides = [
        "data.resolution=28",
        "model.prior=",  # the demo's prior is for 32 px; the step cost does not depend on it
        # Enough phantom patients that every site holds a few hundred images.
        f"data.phantom.num_patients={max(1500, 60 * sites)}",
        f"federation.num_sites={sites}",
        f"federation.rounds={args.rounds}",
        f"federation.local_steps={args.local_steps}",
        f"runtime.device={args.device}",
        "output.samples_per_class=50",
    ]
    command = [str(Path(sys.executable).parent / "privsynth"), "run", "quickstart"]
    command += [arg for pair in overrides for arg in ("--set", pair)]
    command += ["--run-dir", str(run_dir)]
    started = time.perf_counter()
    peak = 0
    with open(scratch / f"sites-{sites}.log", "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        while process.poll() is None:
            peak = max(peak, sum(pss_bytes(pid) for pid in descendants(process.pid)))
            time.sleep(1.0)
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"{sites} sites failed; see {scratch / f'sites-{sites}.log'}")
    rounds = [row["seconds"] for row in RunFolder(run_dir).read_stats()]
    # The first round also starts the site processes; the later ones are the steady state.
    steady = rounds[1:] or rounds
    return {
        "sites": sites,
        "first_round_s": rounds[0],
        "round_s": sum(steady) / len(steady),
        "round_spread_s": (max(steady) - min(steady)) / 2,
        "peak_gib": peak / GIB,
        "wall_s": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sites", default="3,10,30")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--local-steps", type=int, default=20)
    parser.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args()
    print("| sites | first round s | time per round s | peak memory GiB | wall s |")
    print("|---|---|---|---|---|")
    rows, results = [], []
    with tempfile.TemporaryDirectory(prefix="site-scaling-") as scratch:
        for sites in map(int, args.sites.split(",")):
            result = run_federation(sites, args, Path(scratch))
            row = [
                sites,
                f"{result['first_round_s']:.1f}",
                f"{result['round_s']:.1f} ± {result['round_spread_s']:.1f}",
                f"{result['peak_gib']:.2f}",
                f"{result['wall_s']:.0f}",
            ]
            print("| " + " | ".join(map(str, row)) + " |", flush=True)
            rows.append(row)
            results.append(result)
    fit = ""
    if len(results) >= 2:
        base, per_site, fitting = sites_that_fit(results, memory_gib=MACHINE_GIB)
        fit = (
            f"; peak memory ~ {base:.2f} GiB + {per_site * 1024:.1f} MiB per site "
            "(least squares over the rows), so "
            + (
                f"{MACHINE_GIB} GiB holds about {fitting} sites"
                if fitting >= 0
                else "it does not grow with the number of sites here"
            )
        )
        print(fit[2:])
    write_result(
        args.out,
        device=args.device,
        benchmark="site-scaling",
        title="Simulated sites on one machine: time per round and peak memory",
        command=shlex.join([".venv/bin/python", "benchmarks/site_scaling.py", *sys.argv[1:]]),
        note=(
            f"quickstart preset at 28 px, DP-GAN at epsilon 10, {args.rounds} rounds of "
            f"{args.local_steps} local steps; time per round is the mean over rounds "
            "after the first (± half the range); peak memory is the largest sum of PSS "
            "over the run's processes, sampled each second" + fit
        ),
        columns=[
            "sites",
            "first round s",
            "time per round s",
            "peak memory GiB",
            "wall s",
        ],
        rows=rows,
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
