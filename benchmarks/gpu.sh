#!/usr/bin/env bash
# The GPU benchmark in one go (benchmarks/gpu.py): DP step cost, the PneumoniaMNIST preset's
# wall time and a 30-site simulation, each on the GPU and on the CPU; CPU only without a GPU.
# usage: benchmarks/gpu.sh NPZ [--quick]        (PYTHON: default .venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
npz=${1:?usage: benchmarks/gpu.sh PNEUMONIAMNIST_NPZ [--quick]}
shift
exec "${PYTHON:-.venv/bin/python}" benchmarks/gpu.py --pneumoniamnist "$npz" "$@"
