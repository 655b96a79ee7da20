#!/usr/bin/env bash
# Attack a private run and its non-private twin; print the comparison table.
# Usage: benchmarks/attacks_compare.sh RUN_DIR [RUN_DIR ...] [-- privsynth attack options]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=()
while [[ $# -gt 0 && "$1" != "--" ]]; do runs+=("$1"); shift; done
[[ "${1:-}" == "--" ]] && shift
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
for run in "${runs[@]}"; do
    start=$(date +%s)
    .venv/bin/privsynth attack "$run" "$@" > "$run/attack.log" 2>&1
    echo "$run: $(( $(date +%s) - start )) s"
done
.venv/bin/python benchmarks/attacks_table.py "${runs[@]}"
