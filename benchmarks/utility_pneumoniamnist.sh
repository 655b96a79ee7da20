#!/usr/bin/env bash
# Utility of PneumoniaMNIST synthetic images: train the 3-site preset at epsilon 10 and without
# privacy (same steps), then `privsynth evaluate` both against the file's val split (the
# preset's holdout) and print TSTR / TRTR AUCs. A run folder that already holds a generator
# is evaluated as it is, not retrained.
# usage: benchmarks/utility_pneumoniamnist.sh PATH/TO/pneumoniamnist.npz [SAMPLES_PER_CLASS]
set -euo pipefail
npz=${1:?path to pneumoniamnist.npz}
samples=${2:-100,1000}
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
for epsilon in 10 inf; do
    run_dir=runs/bench-pneumoniamnist-eps$epsilon
    if [ ! -f "$run_dir/generator.pt" ]; then
        benchmarks/train_pneumoniamnist.sh "$npz" "$epsilon" "$run_dir"
    fi
    start=$(date +%s)
    .venv/bin/privsynth evaluate "$run_dir" --samples-per-class "$samples"
    echo "evaluate wall time: $(( $(date +%s) - start )) s"
done
for epsilon in 10 inf; do
    .venv/bin/python - "runs/bench-pneumoniamnist-eps$epsilon/evaluation.json" <<'PY'
import json, sys

result = json.load(open(sys.argv[1]))
print(f"\n{sys.argv[1]} (evaluation {result['wall_time_s']:.0f} s)")
for model, values in result["classification"]["models"].items():
    cells = [f"{c} {v['value']:.3f} [{v['ci95'][0]:.3f}, {v['ci95'][1]:.3f}]"
             for c, v in values["auc"].items()]
    macro = values["macro_auc"]
    print(f"  {model:18s} macro AUC {macro['value']:.3f} "
          f"[{macro['ci95'][0]:.3f}, {macro['ci95'][1]:.3f}]  " + "  ".join(cells))
overall = result["distribution"]["overall"]
print("  distribution:", {k: round(v, 3) for k, v in overall.items() if isinstance(v, float)})
print("  label fidelity:", result["label_fidelity"]["synthetic"]["overall"])
PY
done
