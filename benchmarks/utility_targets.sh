#!/usr/bin/env bash
# The PneumoniaMNIST targets (utility and realism): train the shipped presets (3 iid sites, 28 px;
# `pneumoniamnist` at epsilon 10 and without privacy (the same fit on noiseless means),
# `pneumoniamnist-eps1` at epsilon 1; both one mean-embedding release per site) for several
# seeds, `privsynth evaluate` each run on the file's val split, then print TSTR vs TRTR and the
# realism detector's AUC (mean +- spread over seeds), recall, coverage and training wall time
# against the targets. Finished runs and
# evaluations are kept, so an interrupted benchmark resumes.
# usage: benchmarks/utility_targets.sh PATH/TO/pneumoniamnist.npz [SEEDS] [EPSILONS]
set -euo pipefail
npz=${1:?path to pneumoniamnist.npz}
seeds=${2:-0 1 2}
epsilons=${3:-10 1 inf}
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
root=runs/utility-targets
for seed in $seeds; do
    for epsilon in $epsilons; do
        run_dir=$root/eps$epsilon-seed$seed
        if [ ! -f "$run_dir/summary.json" ]; then
            rm -rf "$run_dir"
            # epsilon 1 has its own preset: its noisier release wants fewer features.
            preset=pneumoniamnist
            [ "$epsilon" = 1 ] && preset=pneumoniamnist-eps1
            .venv/bin/privsynth run $preset --run-dir "$run_dir" \
                --set data.medmnist.path="$npz" --set privacy.target_epsilon="$epsilon" \
                --set seed="$seed"
        fi
        if [ ! -f "$run_dir/evaluation.json" ]; then
            .venv/bin/privsynth evaluate "$run_dir" --samples-per-class 1000 --seed "$seed" \
                --tstr-repeats 4
        fi
    done
done
.venv/bin/python benchmarks/utility_targets.py $root
