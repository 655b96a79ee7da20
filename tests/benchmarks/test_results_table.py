"""benchmarks/results_table.py builds the current tables from result files: mean ± spread over
seeds, the commit and command of each row, and a row that says so where a preset has none."""

import json

import pytest

from common.run_folder import RunFolder
from tests.helpers.benchmark_scripts import load_benchmark_script


@pytest.fixture(scope="module")
def results_table():
    return load_benchmark_script("results_table")


@pytest.fixture
def tree(tmp_path, results_table):
    """Two presets, one measured; a results.md with the markers between old text."""
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "measured.yaml").write_text("name: measured  # a comment\nseed: 0\n")
    (configs / "unmeasured.yaml").write_text("name: unmeasured\n")
    results = tmp_path / "results"
    results.mkdir()
    (results / "measured.json").write_text(
        json.dumps(
            {
                "preset": "measured",
                "setting": "epsilon 10",
                "commit": "abc1234",
                "command": 'benchmarks/utility_targets.sh data.npz "0 1 2" "10"',
                "seeds": [0, 1, 2],
                "metrics": {
                    "TSTR macro AUC": [0.90, 0.94, 0.92],
                    "recall": {"values": [0.5, 0.7, 0.6], "digits": 2},
                },
                "wall_time_s": [100, 300, 200],
                "wall_time_of": "training",
                "preset_sha256": results_table.preset_sha256(configs / "measured.yaml"),
            }
        )
    )
    markdown = tmp_path / "results.md"
    markdown.write_text(
        f"# Results\n\nintro\n\n{results_table.BEGIN}\nold table\n{results_table.END}\n\n"
        "## History\n\nkept\n"
    )
    return tmp_path


def _run(results_table, tree, *extra):
    return results_table.main(
        ["--results", str(tree / "results"), "--configs", str(tree / "configs")]
        + ["--markdown", str(tree / "results.md"), *extra]
    )


def test_mean_and_half_range_over_seeds(results_table):
    assert results_table.mean_spread([0.90, 0.94, 0.92], 3) == "0.920 ± 0.020"
    assert results_table.mean_spread([0.5], 2) == "0.50"


def test_table_rows_come_from_the_result_files(results_table, tree):
    assert _run(results_table, tree) == 0
    text = (tree / "results.md").read_text()

    assert "old table" not in text
    assert text.startswith("# Results\n\nintro\n") and text.endswith("## History\n\nkept\n")
    table = text.split("### `measured`\n\n")[1].split("\n\n")[0].splitlines()
    assert table[0] == (
        "| setting | seeds | TSTR macro AUC | recall | wall time | commit | command |"
    )
    assert table[2] == (
        "| epsilon 10 | 0, 1, 2 | 0.920 ± 0.020 | 0.60 ± 0.10 | training 200 ± 100 s | abc1234 "
        '| `benchmarks/utility_targets.sh data.npz "0 1 2" "10"` |'
    )


def test_a_preset_without_results_is_marked_not_measured(results_table, tree):
    _run(results_table, tree)
    text = (tree / "results.md").read_text()

    unmeasured = text.split("### `unmeasured`")[1]
    assert f"| {results_table.NOT_MEASURED} | – |" in unmeasured
    measured = text.split("### `measured`")[1].split("### `unmeasured`")[0]
    assert results_table.NOT_MEASURED not in measured


def test_a_changed_preset_is_flagged_and_check_sees_stale_tables(results_table, tree):
    _run(results_table, tree)
    assert _run(results_table, tree, "--check") == 0

    (tree / "configs" / "measured.yaml").write_text("name: measured\nseed: 1\n")

    assert _run(results_table, tree, "--check") == 1
    _run(results_table, tree)
    assert "epsilon 10 (preset changed since: rerun)" in (tree / "results.md").read_text()


def test_record_writes_a_result_file_from_run_folders(results_table, tree):
    run_dirs = []
    for seed, (tstr, recall) in enumerate([(0.9, 0.6), (0.8, 0.4)]):
        run = RunFolder(tree / f"eps10-seed{seed}")
        run.path.mkdir()
        run.config_file.write_text(f"seed: {seed}\n")
        run.write_summary({"training_time_s": 60.0 + seed})
        models = {"TSTR": {"macro_auc": {"value": 0.5}}, "TRTR": {"macro_auc": {"value": 1.0}}}
        evaluation = {
            "classification": {"models": models},
            "tstr_repeats": {"mean": tstr},
            "distribution": {"overall": {"recall": recall, "coverage": 0.7}},
            "realism": {
                "synthetic": {"auc": 0.9 + seed / 20},
                "real_reference": {"auc": 0.5},
            },
        }
        run.write_evaluation(evaluation, "")
        run_dirs.append(str(run.path))
    out = tree / "results" / "recorded.json"

    code = results_table.main(
        ["record", str(out), "--preset", "unmeasured", "--setting", "epsilon 10"]
        + ["--command", "make it", "--commit", "def5678", "--configs", str(tree / "configs")]
        + run_dirs
    )

    assert code == 0
    result = json.loads(out.read_text())
    assert result["seeds"] == [0, 1] and result["commit"] == "def5678"
    assert result["metrics"]["TSTR macro AUC"] == [0.9, 0.8]  # the mean over draws
    assert result["metrics"]["gap (TRTR − TSTR)"] == [0.1, 0.2]
    assert result["metrics"]["detector AUC"] == [0.9, 0.95]
    assert result["metrics"]["detector, real vs real"] == [0.5, 0.5]
    assert result["wall_time_s"] == [60, 61]
    _run(results_table, tree)
    unmeasured = (tree / "results.md").read_text().split("### `unmeasured`")[1]
    assert (
        "| epsilon 10 | 0, 1 | 0.850 ± 0.050 | 0.150 ± 0.050 | 0.50 ± 0.10 | 0.70 ± 0.00 "
        "| 0.925 ± 0.025 | 0.500 ± 0.000 |" in unmeasured
    )
    assert results_table.NOT_MEASURED not in unmeasured


def test_a_benchmark_of_single_numbers_gets_its_own_table_with_a_row_per_preset(
    results_table, tree
):
    """The shape benchmarks/sweep_estimate.py writes: no `metrics`, one number per field."""
    flat = {
        "benchmark": "sweep-estimate",
        "preset": "unmeasured",
        "commit": "0123abc",
        "command": "python benchmarks/sweep_estimate.py unmeasured",
        "cpus": 2,
        "estimate_s": 600.4,
        "measured_s": 500.0,
        "ratio": 1.2008,
    }
    (tree / "results" / "sweep-estimate-unmeasured.json").write_text(json.dumps(flat))
    other = {**flat, "preset": "my-own-config"}
    (tree / "results" / "sweep-estimate-my-own-config.json").write_text(json.dumps(other))

    _run(results_table, tree)
    text = (tree / "results.md").read_text()

    table = text.split("### Benchmark `sweep-estimate`")[1].split("###")[0]
    assert "| setting | seeds | estimate s | measured s | ratio | wall time |" in table
    assert "| my-own-config (cpus 2) | – | 600 | 500 | 1.20 | – | 0123abc |" in table
    assert "| unmeasured (cpus 2) | – | 600 | 500 | 1.20 | – | 0123abc |" in table
    unmeasured = text.split("### `unmeasured`")[1].split("###")[0]
    assert results_table.NOT_MEASURED in unmeasured


def test_a_benchmark_with_its_own_rows_is_shown_as_written(results_table, tree):
    results = tree / "results"
    (results / "dp-step-cost.json").write_text(
        json.dumps(
            {
                "benchmark": "dp-step-cost",
                "title": "DP step cost",
                "commit": "abc1234",
                "date": "2026-12-05",
                "command": ".venv/bin/python benchmarks/dp_step_cost.py",
                "machine": "2 cores",
                "target": "ratio <= 1.15",
                "columns": ["resolution", "ratio"],
                "rows": [[28, "1.10 ± 0.01"], [64, "1.20 ± 0.02"]],
            }
        )
    )

    tables = results_table.build_tables(results, tree / "configs")

    assert "### Benchmark `dp-step-cost`: DP step cost" in tables
    assert "| resolution | ratio |\n|---|---|\n| 28 | 1.10 ± 0.01 |\n| 64 | 1.20 ± 0.02 |" in tables
    assert "Commit abc1234, 2026-12-05; machine: 2 cores; target: ratio <= 1.15." in tables
    assert "`results/dp-step-cost.json`" in tables


def test_a_benchmark_with_rows_but_no_machine_is_refused(results_table, tree):
    results = tree / "results"
    (results / "bad.json").write_text(
        json.dumps(
            {
                "benchmark": "x",
                "title": "x",
                "commit": "a",
                "command": "c",
                "columns": [],
                "rows": [],
            }
        )
    )

    with pytest.raises(SystemExit, match="missing machine"):
        results_table.build_tables(results, tree / "configs")
