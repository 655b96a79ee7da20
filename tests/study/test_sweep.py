"""The sweep: plan, resume, comparison table, trade-off plots and the HTML report."""

import json
import math

import pytest
import torch

from attacks.registry import MECHANISM_AUDIT, SYNTHETIC_ONLY
from attacks.suite import run_attacks
from common.config import config_from_dict
from common.device import CPU
from common.errors import UserError
from common.run_folder import RunFolder, StudyFolder
from study.html_report import write_report
from study.sweep import (
    SweepSettings,
    member_config,
    on_device,
    parse_epsilons,
    plan_sweep,
    run_sweep,
    sweep_device,
)
from study.tradeoff import compare, strongest_membership_attack
from tests.helpers.browser import chromium_path
from tests.helpers.configs import ATTACK_OPTIONS, TINY
from tests.helpers.datasets import write_shifted_holdout_npz
from tests.helpers.run_folders import write_shifted_holdout_run

# Two rounds, not TINY's three: quicker, and "federation.rounds=3" below is another config.
SWEEP = [*TINY, "federation.rounds=2"]


def test_epsilons_parse_sorted_with_inf_last():
    assert parse_epsilons("10, 1,inf,3,1") == (1.0, 3.0, 10.0, math.inf)


@pytest.mark.parametrize("text", ["0,1", "one", "1,,3", "-2"])
def test_bad_epsilons_are_a_clear_error(text):
    with pytest.raises(UserError, match="--epsilons"):
        parse_epsilons(text)


def test_each_member_gets_its_epsilon_for_every_site(tmp_path):
    config = config_from_dict(
        {}, ["privacy.sites=[{target_epsilon: 2}, {target_epsilon: 5}, {target_epsilon: 8}]"]
    )

    members = plan_sweep(config, (1.0, math.inf), tmp_path)
    private = member_config(config, 1.0)

    assert [m.run_dir.name for m in members] == ["eps-1", "eps-inf"]
    assert private.site_budget(0).target_epsilon == private.site_budget(1).target_epsilon == 1.0
    assert not member_config(config, math.inf).private


def test_a_member_trains_on_the_sweeps_device_whatever_its_config_says():
    config = config_from_dict({}, [*SWEEP, "runtime.device=cuda"])
    settings = SweepSettings(device=torch.device("cpu"))

    member = on_device(member_config(config, 1.0), sweep_device(config, settings))

    assert member.runtime.device == "cpu"
    assert member.privacy.target_epsilon == 1.0


def test_without_a_device_of_its_own_the_sweep_uses_the_configs_runtime_device():
    config = config_from_dict({}, [*SWEEP, "runtime.device=cpu"])

    assert sweep_device(config, SweepSettings()) == torch.device("cpu")


def fake_member(run_dir, epsilon, tstr, mia_auc):
    run_dir.mkdir(parents=True)
    run = RunFolder(run_dir)
    run.write_summary({"epsilon_per_site": {"site-0": epsilon}})
    run.write_evaluation(
        {
            "classification": {
                "models": {
                    "TSTR": {"macro_auc": {"value": tstr}},
                    "TRTR": {"macro_auc": {"value": 0.95}},
                }
            },
            "distribution": {
                "overall": {
                    "frechet_distance": 12.0,
                    "precision": 0.7,
                    "recall": 0.6,
                    "coverage": 0.5,
                }
            },
        },
        "",
    )
    attacks = {
        "mia-distance": attack_entry(
            membership={
                "nearest": {"auc": mia_auc - 0.1},
                "calibrated": {"auc": mia_auc, "tpr_at_fpr": {"0.01": {"tpr": 0.04}}},
            },
            negative_control={"control": "halves", "membership": {"calibrated": {"auc": 0.51}}},
            power={"adequate": True},
        ),
        "copy-detection": attack_entry(findings={"copy_rate_any": 0.001}, power={}),
        "dp-audit": attack_entry(findings={"lower_bound": 0.3}, threat_model=MECHANISM_AUDIT),
    }
    run.write_attacks(
        json.dumps({"attacks": attacks, "verdicts": {"synthetic data only": "No leakage."}}), ""
    )


def attack_entry(threat_model: str = SYNTHETIC_ONLY, **fields) -> dict:
    """An attack's entry in attacks.json; silent (not leaked) unless `fields` say otherwise."""
    return {
        "threat_model": threat_model,
        "skipped": "",
        "leaked": False,
        "findings": {},
        "membership": {},
        "power": {},
        "negative_control": {},
        **fields,
    }


def test_the_table_reads_each_members_reports_and_picks_the_strongest_attack(tmp_path):
    config = config_from_dict({}, SWEEP)
    members = plan_sweep(config, (1.0, math.inf), tmp_path)
    fake_member(members[0].run_dir, 0.99, tstr=0.80, mia_auc=0.52)
    fake_member(members[1].run_dir, math.inf, tstr=0.90, mia_auc=0.75)

    rows = compare(members, tmp_path)

    assert [row["epsilon"] for row in rows] == ["1", "inf"]
    assert rows[0]["tstr_macro_auc"] == 0.80
    assert rows[1]["strongest_mia"] == "mia-distance: calibrated"
    assert rows[1]["mia_auc"] == 0.75
    assert rows[0]["mia_tpr_at_1pct_fpr"] == 0.04
    assert rows[0]["audit_epsilon_lower_bound"] == 0.3
    assert rows[1]["mia_control_auc"] == 0.51
    # Copy detection found nothing without a positive control: inconclusive, not "no copies".
    assert rows[0]["attack_caveats"] == "inconclusive: copy-detection"
    assert rows[1]["epsilon_spent"] is None  # non-private: no finite epsilon
    study = StudyFolder(tmp_path)
    assert "| 1 | 0.99 | 0.800 | 0.950 |" in study.table_markdown.read_text()
    assert study.tradeoff_plot.stat().st_size > 10_000


def test_strongest_attack_of_an_empty_report_is_none():
    assert strongest_membership_attack({}) == (None, {}, {})


def test_report_html_names_the_attacks_that_proved_nothing(tmp_path):
    config = config_from_dict({}, SWEEP)
    members = plan_sweep(config, (1.0,), tmp_path)
    fake_member(members[0].run_dir, 1.0, tstr=0.8, mia_auc=0.6)
    rows = compare(members, tmp_path)

    page = write_report(rows, members, tmp_path, "tiny sweep").read_text()

    assert "<th>attack caveats</th>" in page and "<th>its negative-control AUC</th>" in page
    assert "<td>inconclusive: copy-detection</td></tr>" in page


def test_the_table_and_report_html_say_when_a_signal_is_above_what_epsilon_allows(tmp_path):
    # A run at epsilon 1 whose holdout is brighter than the training films and which kept no
    # untrained share: the signal against the holdout is more than epsilon 1 allows.
    members = plan_sweep(config_from_dict({}, SWEEP), (1.0,), tmp_path)
    data_file = write_shifted_holdout_npz(tmp_path / "shifted.npz", 12)
    run_dir = members[0].run_dir
    write_shifted_holdout_run(run_dir, data_file, "independent", 1.0, ["data.untrained_fraction=0"])
    run_attacks(run_dir, ["mia-distance"], ATTACK_OPTIONS, tmp_path / "cache", device=CPU)

    rows = compare(members, tmp_path)
    page = write_report(rows, members, tmp_path, "tiny sweep").read_text()

    assert rows[0]["membership_verdict"] == "synthetic data only: above the DP bound"
    assert rows[0]["attack_caveats"] == "above the DP bound: mia-distance"
    assert rows[0]["mia_tpr_bound_at_1pct_fpr"] < math.e * 0.01
    assert "<td>synthetic data only: above the DP bound</td>" in page
    assert "above what epsilon 1 allows for membership: the members and non-members differ" in page


@pytest.mark.timeout(180)
def test_report_html_renders_in_chromium_with_every_figure(tmp_path):
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    config = config_from_dict({}, SWEEP)
    members = plan_sweep(config, (1.0, math.inf), tmp_path)
    for member, eps in zip(members, (1.0, math.inf)):
        fake_member(member.run_dir, eps, tstr=0.8, mia_auc=0.6)
    rows = compare(members, tmp_path)
    for member in members:
        member.folder.samples_image.write_bytes(StudyFolder(tmp_path).tradeoff_plot.read_bytes())
    report = write_report(rows, members, tmp_path, "tiny sweep")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(report.as_uri())
        widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.naturalWidth)")
        cells = page.eval_on_selector_all("#results tr", "rows => rows.length")
        text = page.inner_text("body")
        browser.close()

    assert len(widths) == 3 and all(width > 0 for width in widths)
    assert cells == 3
    assert "No leakage." in text
    assert "inconclusive: copy-detection" in text


def test_a_resumed_sweep_does_not_retrain_and_a_changed_config_is_refused(tmp_path):
    config = config_from_dict({}, SWEEP)
    train_only = SweepSettings(stages=("train",))
    study = StudyFolder(tmp_path)
    run_sweep(config, (3.0,), tmp_path, train_only)
    trained = study.member("3").summary_file.stat().st_mtime_ns

    run_sweep(config, (3.0,), tmp_path, train_only)
    other = config_from_dict({}, [*SWEEP, "federation.rounds=3"])

    assert study.member("3").summary_file.stat().st_mtime_ns == trained
    assert len(study.read_timings()) == 1
    with pytest.raises(UserError, match="another config"):
        run_sweep(other, (3.0,), tmp_path, train_only)


def test_a_sweep_pinned_before_a_config_key_existed_resumes(tmp_path):
    # A sweep started with an older privsynth pinned a config without the newer keys.
    config = config_from_dict({}, SWEEP)
    train_only = SweepSettings(stages=("train",))
    study = StudyFolder(tmp_path)
    run_sweep(config, (3.0,), tmp_path, train_only)
    pinned = json.loads(study.request_file.read_text())
    del pinned["config"]["model"]["generator_upsampling"]
    study.request_file.write_text(json.dumps(pinned))

    run_sweep(config, (3.0,), tmp_path, train_only)

    assert len(study.read_timings()) == 1
