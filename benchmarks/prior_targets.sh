#!/usr/bin/env bash
# A preset from its public prior against the same preset from scratch on PneumoniaMNIST (3 iid
# sites, 28 px; by default `pneumoniamnist-dpgan`, the DP-GAN): train each for several seeds,
# `privsynth evaluate` each run on the file's val split, then print TSTR vs TRTR and the
# realism detector's AUC (mean +- spread over seeds) with training wall time against the
# targets (benchmarks/utility_targets.py). Finished runs and evaluations are kept, so an
# interrupted benchmark resumes.
# usage: benchmarks/prior_targets.sh PATH/TO/pneumoniamnist.npz [SEEDS] [EPSILONS] [PRESET]
#     [STARTS]
# EPSILONS: per-site budgets, e.g. "inf 10 1"; "inf" trains without privacy.
# PRESET: one that names a prior (model.prior). STARTS: "prior scratch" (the default) or
# either alone; a run from scratch sets model.prior='' (and no prior features).
set -euo pipefail
npz=${1:?path to pneumoniamnist.npz}
seeds=${2:-0 1 2}
epsilons=${3:-10}
preset=${4:-pneumoniamnist-dpgan}
starts=${5:-prior scratch}
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
root=runs/prior-targets/$preset
for seed in $seeds; do
    for epsilon in $epsilons; do
        for start in $starts; do
            run_dir=$root/eps$epsilon-$start-seed$seed
            target=$epsilon
            [ "$epsilon" = inf ] && target=.inf
            from_scratch=()
            [ "$start" = scratch ] && from_scratch=(--set model.prior= --set mean_embedding.prior_features=0)
            if [ ! -f "$run_dir/summary.json" ]; then
                rm -rf "$run_dir"
                .venv/bin/privsynth run "$preset" --run-dir "$run_dir" \
                    --set data.medmnist.path="$npz" --set privacy.target_epsilon="$target" \
                    --set seed="$seed" "${from_scratch[@]}"
            fi
            if [ ! -f "$run_dir/evaluation.json" ]; then
                .venv/bin/privsynth evaluate "$run_dir" --samples-per-class 1000 \
                    --seed "$seed" --tstr-repeats 4
            fi
        done
    done
done
.venv/bin/python benchmarks/utility_targets.py $root
