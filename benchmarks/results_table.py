"""The current tables at the top of benchmarks/results.md, regenerated from result files.

usage: .venv/bin/python benchmarks/results_table.py [--check]
       .venv/bin/python benchmarks/results_table.py record OUT.json --preset NAME
           --setting TEXT --command TEXT [--commit HASH] RUN_DIR [RUN_DIR ...]

The first form rewrites the part of benchmarks/results.md between the two marker comments
(BEGIN and END below) with one table per shipped preset (configs/*.yaml). Each row is one
result file in benchmarks/results/: its setting and seeds, each metric's mean ± spread over the
seeds (spread = half the range, as in benchmarks/utility_targets.py), the wall time, and the
commit and command that produced it. A preset without a result file gets a row saying it is
not measured at this commit; nothing is ever filled in by hand. `--check` only reports whether
results.md is up to date (exit 1 if not).

The second form writes a result file from finished, evaluated run folders (summary.json and
evaluation.json, e.g. those benchmarks/utility_targets.sh leaves in runs/utility-targets/):
TSTR macro AUC (the mean over its draws when evaluated with --tstr-repeats), the gap to TRTR,
recall and coverage per seed, the realism detector's AUC and its real-vs-real reference (when
every run's evaluation has them), and each run's training time.

A result file:
    {"preset": "pneumoniamnist", "setting": "epsilon 10", "commit": "3f684a6",
     "date": "2026-12-04", "command": "benchmarks/utility_targets.sh NPZ \"0 1 2\" \"10\"",
     "seeds": [0, 1, 2],
     "metrics": {"TSTR macro AUC": [0.987, 0.983, 0.984],
                 "recall": {"values": [0.84, 0.76, 0.86], "digits": 2}},
     "wall_time_s": [688, 616, 545], "wall_time_of": "training",
     "preset_sha256": "...", "note": "..."}
A benchmark that measures a table of its own (e.g. benchmarks/dp_step_cost.py,
benchmarks/site_scaling.py) writes `columns` and `rows` (cells as they are shown, spreads
included) with its `benchmark`, `title`, `commit`, `command`, `machine`, and optionally
`target` and `note`; its table is shown as it is.
`preset_sha256` is the hash of the preset's values (not its comments) when it was measured;
a row whose preset has changed since says so. A result file without `metrics`, one number per
field (benchmarks/sweep_estimate.py writes such files), shows each numeric field as a metric
and its `benchmark` as the setting. Result files for configs that are not shipped presets get
their own tables after the presets'.
"""

import argparse
import datetime
import hashlib
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.run_folder import RunFolder  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO / "benchmarks" / "results"
MARKDOWN = REPO / "benchmarks" / "results.md"
CONFIGS_DIR = REPO / "configs"
BEGIN = "<!-- tables:begin (written by benchmarks/results_table.py; edits here are lost) -->"
END = "<!-- tables:end -->"
NOT_MEASURED = "not measured at this commit"
FIXED_COLUMNS = ("wall time", "commit", "command")
# Numeric fields of a metrics-less result file that describe the setting, not a result.
CONTEXT_FIELDS = ("cpus", "seed")


@dataclass(frozen=True)
class Metric:
    name: str
    values: list[float]
    digits: int


def preset_sha256(config_file: Path) -> str:
    """A hash of the preset's values: comments and layout do not change it."""
    values = yaml.safe_load(config_file.read_text())
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()


def mean_spread(values: list[float], digits: int) -> str:
    """mean ± half the range over seeds, or the single value."""
    if not values:
        return "–"
    mean = sum(values) / len(values)
    if len(values) == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {(max(values) - min(values)) / 2:.{digits}f}"


def _metrics(result: dict) -> list[Metric]:
    metrics = []
    for name, entry in result["metrics"].items():
        if isinstance(entry, dict):
            values, digits = entry["values"], entry.get("digits", 3)
        else:
            values, digits = entry, 3
        metrics.append(Metric(name, [float(v) for v in values], int(digits)))
    return metrics


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    return f"`{_cell(text)}`" if text else ""


def _wall_time(result: dict) -> str:
    seconds = result.get("wall_time_s") or []
    if not seconds:
        return "–"
    of = result.get("wall_time_of", "")
    return f"{of} {mean_spread([float(s) for s in seconds], 0)} s".strip()


def normalise(result: dict) -> dict:
    """A result file in the shape the tables read. A file with no `metrics` (one number per
    field, e.g. benchmarks/sweep_estimate.py's) shows each numeric field as a one-value
    metric, and its `benchmark` as the setting."""
    if "metrics" in result:
        return result
    metrics, context = {}, []
    for key, value in result.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if key in CONTEXT_FIELDS:
            context.append(f"{key.replace('_', ' ')} {value}")
        else:
            name = key[:-2] + " s" if key.endswith("_s") else key.replace("_", " ")
            metrics[name] = {"values": [value], "digits": 0 if key.endswith("_s") else 2}
    setting = result.get("setting") or result.get("preset") or "–"
    if context:
        setting = f"{setting} ({', '.join(context)})"
    return {**result, "setting": setting, "metrics": metrics}


BENCHMARK_PREFIX = "benchmark "


def load_results(results_dir: Path) -> dict[str, list[dict]]:
    """Result files by preset, each preset's in file-name order."""
    by_preset: dict[str, list[dict]] = {}
    for path in sorted(results_dir.glob("*.json")):
        try:
            result = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise SystemExit(f"{path}: not JSON ({error})") from error
        required = {"preset", "commit", "command"}
        if "rows" in result:
            required = {"benchmark", "title", "columns", "commit", "command", "machine"}
        else:
            result = normalise(result)
        missing = required - result.keys()
        if missing:
            raise SystemExit(f"{path}: missing {', '.join(sorted(missing))}")
        # A benchmark of its own kind (not a preset's utility) gets its own table.
        key = BENCHMARK_PREFIX + result["benchmark"] if "benchmark" in result else result["preset"]
        by_preset.setdefault(key, []).append({**result, "_file": path.name})
    return by_preset


def metric_names(results: list[dict]) -> list[str]:
    """The metrics of a preset's result files, in the order they first appear."""
    return list(dict.fromkeys(name for result in results for name in result["metrics"]))


def preset_table(results: list[dict], current_sha: str | None) -> str:
    """One row per result file: setting, seeds, each metric's mean ± spread, wall time, commit
    and command; a single row saying so when there is no result file."""
    names = metric_names(results)
    columns = ["setting", "seeds", *names, *FIXED_COLUMNS]
    lines = [
        "| " + " | ".join(_cell(c) for c in columns) + " |",
        "|" + "---|" * len(columns),
    ]
    if not results:
        lines.append(f"| {NOT_MEASURED} |" + " – |" * (len(columns) - 1))
    for result in results:
        setting = _cell(result["setting"])
        measured_sha = result.get("preset_sha256")
        if measured_sha and current_sha and measured_sha != current_sha:
            setting += " (preset changed since: rerun)"
        metrics = {metric.name: metric for metric in _metrics(result)}
        seeds = result.get("seeds") or []
        counts = {len(metric.values) for metric in metrics.values()}
        if not seeds:
            seeds_cell = "–"  # one measurement, not seeded runs
        elif {len(seeds)} == counts:
            seeds_cell = ", ".join(map(str, seeds))
        else:  # some metric has fewer values than there are seeds: say how many
            seeds_cell = f"{', '.join(map(str, seeds))} ({'/'.join(map(str, sorted(counts)))})"
        cells = [setting, seeds_cell]
        for name in names:
            metric = metrics.get(name)
            cells.append(mean_spread(metric.values, metric.digits) if metric else "–")
        cells += [_wall_time(result), _cell(result["commit"]), _code(result["command"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def rows_table(result: dict) -> list[str]:
    """A benchmark's own table as it wrote it, with where and how it was measured."""
    columns = result["columns"]
    lines = [
        "| " + " | ".join(_cell(c) for c in columns) + " |",
        "|" + "---|" * len(columns),
        *("| " + " | ".join(_cell(c) for c in row) + " |" for row in result["rows"]),
    ]
    about = [f"Commit {_cell(result['commit'])}, {result.get('date', '')}".strip(", ")]
    about.append(f"machine: {_cell(result['machine'])}")
    if result.get("target"):
        about.append(f"target: {_cell(result['target'])}")
    parts = ["\n".join(lines), "; ".join(about) + f". Command: {_code(result['command'])}."]
    if result.get("note"):
        parts.append(_cell(result["note"]))
    return parts


def _preset_order(name: str) -> tuple[bool, str]:
    return (name != "demo", name)  # the demo first, the rest by name


def build_tables(results_dir: Path, configs_dir: Path) -> str:
    """The Markdown between the markers: one table per shipped preset."""
    by_preset = load_results(results_dir)
    configs = {path.stem: path for path in configs_dir.glob("*.yaml")}
    parts = []
    # Shipped presets first; a result for any other config name gets its own table after them.
    names = sorted(configs, key=_preset_order) + sorted(set(by_preset) - set(configs))
    for name in names:
        results = by_preset.get(name, [])
        shipped = name in configs
        if results and "rows" in results[0]:
            for result in results:
                parts.append(f"### Benchmark `{result['benchmark']}`: {_cell(result['title'])}")
                parts += [*rows_table(result), f"Result file: `results/{result['_file']}`."]
            continue
        if name.startswith(BENCHMARK_PREFIX):
            parts.append(f"### Benchmark `{name.removeprefix(BENCHMARK_PREFIX)}`")
        else:
            parts.append(f"### `{name}`" + ("" if shipped else " (not a shipped preset)"))
        parts.append(preset_table(results, preset_sha256(configs[name]) if shipped else None))
        notes = [f"*{_cell(r['setting'])}*: {_cell(r['note'])}" for r in results if r.get("note")]
        files = ", ".join(f"`results/{r['_file']}`" for r in results)
        if files:
            parts.append(" ".join([*notes, f"Result files: {files}."]))
        else:
            parts.append("No result file; measurements at earlier commits, if any: history.md.")
    return "\n\n".join(parts)


def rewrite(markdown: Path, tables: str) -> str:
    text = markdown.read_text()
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.DOTALL)
    if not pattern.search(text):
        raise SystemExit(f"{markdown}: no '{BEGIN}' ... '{END}' section to rewrite")
    return pattern.sub(lambda _: f"{BEGIN}\n\n{tables}\n\n{END}", text, count=1)


# ---- record: a result file from run folders ---------------------------------------------


def _run_values(run_dir: Path) -> dict:
    run = RunFolder(run_dir)
    evaluation = run.read_evaluation()
    summary = run.read_summary()
    config = yaml.safe_load(run.config_file.read_text())
    models = evaluation["classification"]["models"]
    tstr = models["TSTR"]["macro_auc"]["value"]
    trtr = models["TRTR"]["macro_auc"]["value"]
    if evaluation.get("tstr_repeats"):
        tstr = evaluation["tstr_repeats"]["mean"]
    overall = evaluation["distribution"]["overall"]
    realism = evaluation.get("realism")
    return {
        "seed": config.get("seed"),
        "tstr": tstr,
        "gap": trtr - tstr,
        "recall": overall["recall"],
        "coverage": overall["coverage"],
        "train_s": summary["training_time_s"],
        # Evaluations from before the realism detector have none.
        "detector": realism and realism["synthetic"]["auc"],
        "real_vs_real": realism and realism["real_reference"]["auc"],
    }


def _git_commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    )
    return done.stdout.strip() or "unknown"


def record(args: argparse.Namespace) -> None:
    config_file = args.configs / f"{args.preset}.yaml"
    if not config_file.exists():
        raise SystemExit(f"no preset {config_file}")
    runs = [_run_values(Path(run_dir)) for run_dir in args.run_dirs]
    result = {
        "preset": args.preset,
        "setting": args.setting,
        "commit": args.commit or _git_commit(),
        "date": datetime.date.today().isoformat(),
        "command": args.command,
        "seeds": [run["seed"] for run in runs],
        "metrics": {
            "TSTR macro AUC": [round(run["tstr"], 4) for run in runs],
            "gap (TRTR − TSTR)": [round(run["gap"], 4) for run in runs],
            "recall": {"values": [round(run["recall"], 3) for run in runs], "digits": 2},
            "coverage": {"values": [round(run["coverage"], 3) for run in runs], "digits": 2},
            **(
                {
                    "detector AUC": [round(run["detector"], 4) for run in runs],
                    "detector, real vs real": [round(run["real_vs_real"], 4) for run in runs],
                }
                if all(run["detector"] is not None for run in runs)
                else {}
            ),
        },
        "wall_time_s": [round(run["train_s"]) for run in runs],
        "wall_time_of": "training",
        "preset_sha256": preset_sha256(config_file),
    }
    if args.note:
        result["note"] = args.note
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {args.out}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["record"]:
        parser = argparse.ArgumentParser(prog="results_table.py record")
        parser.add_argument("out", type=Path, help="the result file to write")
        parser.add_argument("--preset", required=True, help="a preset name from configs/")
        parser.add_argument("--setting", required=True, help="e.g. 'epsilon 10'")
        parser.add_argument("--command", required=True, help="the command that made the runs")
        parser.add_argument("--commit", help="default: git HEAD")
        parser.add_argument("--note", help="one sentence shown under the table")
        parser.add_argument("--configs", type=Path, default=CONFIGS_DIR)
        parser.add_argument("run_dirs", nargs="+", help="evaluated run folders, one per seed")
        record(parser.parse_args(argv[1:]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=RESULTS_DIR)
    parser.add_argument("--markdown", type=Path, default=MARKDOWN)
    parser.add_argument("--configs", type=Path, default=CONFIGS_DIR)
    parser.add_argument("--check", action="store_true", help="exit 1 if results.md is stale")
    args = parser.parse_args(argv)
    text = rewrite(args.markdown, build_tables(args.results, args.configs))
    if args.check:
        stale = text != args.markdown.read_text()
        print(f"{args.markdown}: {'stale' if stale else 'up to date'}")
        return 1 if stale else 0
    args.markdown.write_text(text)
    print(f"rewrote the tables in {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
