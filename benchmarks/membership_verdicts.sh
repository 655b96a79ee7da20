#!/usr/bin/env bash
# Membership verdicts against a holdout of other patients: train the `pneumoniamnist-eps1`
# preset (3 iid sites, epsilon 1 each, the file's val split as the holdout, 10% of each site's
# images kept untrained), attack it, then attack copies of it whose holdout is the val split 12
# grey levels darker (another population), with the sites' untrained share as the negative
# control and without it (as a run planned before sites kept one), and write the result file.
# The generator's latent search (mia-reconstruction) runs on the first run only: on 2 CPU cores
# it takes most of an hour. Finished runs and attacks are kept, so the benchmark resumes.
# usage: benchmarks/membership_verdicts.sh PATH/TO/pneumoniamnist.npz [ROOT]
set -euo pipefail
npz=${1:?path to pneumoniamnist.npz}
root=${2:-runs/membership-verdicts}
cd "$(dirname "$0")/.."
attack() {
    [ -f "$1/attacks.json" ] || .venv/bin/privsynth attack "$1" --only "$2" --members 300 \
        --device cpu
}
if [ ! -f "$root/val/summary.json" ]; then
    rm -rf "$root/val"
    .venv/bin/privsynth run pneumoniamnist-eps1 --run-dir "$root/val" \
        --set data.medmnist.path="$npz" --set runtime.device=cpu
fi
attack "$root/val" mia-distance,mia-domias,mia-reconstruction,copy-detection
if [ ! -d "$root/darker" ]; then
    .venv/bin/python benchmarks/shifted_holdout.py "$root/val" "$root/darker" --brightness -12
fi
for run in "$root/darker/run" "$root/darker/run-without-untrained"; do
    attack "$run" mia-distance,mia-domias,copy-detection
done
.venv/bin/python benchmarks/membership_verdicts.py benchmarks/results/membership-verdicts.json \
    --command "benchmarks/membership_verdicts.sh $npz" \
    --note "pneumoniamnist-eps1 (seed 0), attacked with --members 300 (262 members against 262 non-members: half of the 524 val films; the other half is the attacker's reference set); the darker runs are the same trained run with the val split 12 grey levels darker; DP bound: the prv accountant's privacy profile of site-0's ledger, at 1% FPR" \
    "val split=$root/val" \
    "val split 12 levels darker=$root/darker/run" \
    "val split 12 levels darker, no untrained share=$root/darker/run-without-untrained"
