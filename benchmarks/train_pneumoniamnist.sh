#!/usr/bin/env bash
# Train a PneumoniaMNIST preset (3 sites, iid) at one epsilon and print the run summary.
# usage: [PRESET=pneumoniamnist-dpgan] benchmarks/train_pneumoniamnist.sh PATH/TO/pneumoniamnist.npz
#        [EPSILON] [RUN_DIR]
# The runs in benchmarks/history.md before commit 351899f used a DP-GAN `pneumoniamnist` preset
# (from commit f20b234 on the one now named pneumoniamnist-dpgan: PRESET=pneumoniamnist-dpgan);
# the default is the shipped mean-embedding `pneumoniamnist`.
set -euo pipefail
npz=${1:?path to pneumoniamnist.npz}
epsilon=${2:-10}
run_dir=${3:-runs/bench-pneumoniamnist-eps$epsilon}
cd "$(dirname "$0")/.."
start=$(date +%s)
.venv/bin/privsynth run "${PRESET:-pneumoniamnist}" --run-dir "$run_dir" \
    --set data.medmnist.path="$npz" --set privacy.target_epsilon="$epsilon"
echo "wall time: $(( $(date +%s) - start )) s"
cat "$run_dir/summary.json"
