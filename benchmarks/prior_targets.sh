#!/usr/bin/env bash
# The DP-GAN from the public prior against the DP-GAN from scratch on PneumoniaMNIST (3 iid
# sites, 28 px, `pneumoniamnist-dpgan`, which names the prior `chest-28`): train each for
# several seeds, `privsynth evaluate` each run on the file's val split, then print TSTR vs
# TRTR and the realism detector's AUC (mean +- spread over seeds) with training wall time
# against the targets (benchmarks/utility_targets.py). Finished runs and evaluations are
# kept, so an interrupted benchmark resumes.
# usage: benchmarks/prior_targets.sh PATH/TO/pneumoniamnist.npz [SEEDS] [EPSILONS]
set -euo pipefail
npz=${1:?path to pneumoniamnist.npz}
seeds=${2:-0 1 2}
epsilons=${3:-10}
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
root=runs/prior-targets
for seed in $seeds; do
    for epsilon in $epsilons; do
        for start in prior scratch; do
            run_dir=$root/eps$epsilon-$start-seed$seed
            prior=chest-28
            [ "$start" = scratch ] && prior=
            if [ ! -f "$run_dir/summary.json" ]; then
                rm -rf "$run_dir"
                .venv/bin/privsynth run pneumoniamnist-dpgan --run-dir "$run_dir" \
                    --set data.medmnist.path="$npz" --set privacy.target_epsilon="$epsilon" \
                    --set model.prior="$prior" --set seed="$seed"
            fi
            if [ ! -f "$run_dir/evaluation.json" ]; then
                .venv/bin/privsynth evaluate "$run_dir" --samples-per-class 1000 \
                    --seed "$seed" --tstr-repeats 4
            fi
        done
    done
done
.venv/bin/python benchmarks/utility_targets.py $root
