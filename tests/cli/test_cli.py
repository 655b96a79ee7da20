"""User mistakes give one clear message and exit code 2, never a traceback."""

import pytest

from cli.main import main
from common.run_folder import RunFolder, SiteFolder


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["run", "no-such-preset"], "not found"),
        (["run", "quickstart", "--set", "privacy.target_epsilon=0"], "privacy.target_epsilon"),
        (["run", "quickstart", "--set", "privacy.delta=2"], "privacy.delta"),
        (["run", "quickstart", "--set", "data.untrained_fraction=1"], "data.untrained_fraction"),
        (["run", "quickstart", "--set", "data.source=imagenet"], "valid choices"),
        (["run", "quickstart", "--set", "federation.num_sites"], "key=value"),
        (["run", "--resume", "/no/such/run"], RunFolder("/no/such/run").config_file.name),
        (
            ["run", "pneumoniamnist", "--dry-run", "--set", "data.medmnist.path=/no/such.npz"],
            "/no/such.npz",
        ),
    ],
)
def test_user_errors_are_one_line_without_traceback(argv, fragment, capsys):
    code = main(argv)

    err = capsys.readouterr().err
    assert code == 2
    assert fragment in err
    assert "Traceback" not in err
    assert err.startswith("privsynth: error: ")


def test_dry_run_prints_the_calibrated_noise_per_site(capsys):
    code = main(["run", "quickstart", "--dry-run", "--set", "data.phantom.num_patients=60"])

    out = capsys.readouterr().out
    assert code == 0
    assert out.count("noise multiplier") == 3
    assert "target_epsilon: 10.0" in out
    assert "untrained_fraction: 0.1" in out and "data.untrained_fraction 0.1" in out
    assert out.count("more kept untrained") == 3


def test_a_run_planned_before_untrained_shares_resumes_on_the_split_it_recorded(tmp_path):
    from cli.run import resumed_config
    from common.config import config_from_dict
    from common.data.federation import plan_federation

    run = RunFolder(tmp_path)
    # Such a run's config.yaml has no data.untrained_fraction: it reads as the default.
    config = config_from_dict({}, ["data.phantom.num_patients=40"])
    earlier = config_from_dict({}, ["data.phantom.num_patients=40", "data.untrained_fraction=0"])
    recorded = plan_federation(earlier).to_dict()
    del recorded["untrained"]
    run.write_config(config)
    run.write_split(recorded)

    resumed = resumed_config(run)

    assert resumed.data.untrained_fraction == 0
    assert run.read_config().data.untrained_fraction == 0
    sites = [indices.tolist() for indices in plan_federation(resumed).sites]
    assert sites == recorded["sites"]
    assert sum(map(len, plan_federation(config).sites)) < sum(map(len, sites))


def test_patient_unit_dry_run_uses_patient_sample_rate(capsys):
    main(
        [
            "run",
            "quickstart",
            "--dry-run",
            "--set",
            "privacy.unit=patient",
            "--set",
            "federation.partition=by-patient",
        ]
    )

    assert "patients, sample rate" in capsys.readouterr().out


def test_patient_unit_with_a_partition_that_splits_patients_is_one_clear_error(capsys):
    code = main(["run", "quickstart", "--dry-run", "--set", "privacy.unit=patient"])

    assert code == 2
    error = capsys.readouterr().err
    assert "privacy.unit" in error and "federation.partition" in error
    assert "Traceback" not in error


def test_a_new_run_never_reuses_an_existing_run_folder(tmp_path, capsys):
    RunFolder(tmp_path).config_file.write_text("name: earlier\n")

    code = main(["run", "quickstart", "--run-dir", str(tmp_path)])

    assert code == 2
    assert "--resume" in capsys.readouterr().err


def test_ledger_prints_a_sites_spending_history(tmp_path, capsys):
    from common.privacy.ledger import PrivacyLedger

    ledger = PrivacyLedger.open(
        SiteFolder(tmp_path).ledger, unit="image", delta=1e-5, accountant="rdp"
    )
    with ledger.transaction():
        ledger.calibrate(noise_multiplier=1.0, sample_rate=0.01)
        ledger.record(round_number=1, steps=500)
        ledger.record(round_number=2, steps=500)

    code = main(["ledger", str(tmp_path)])

    out = capsys.readouterr().out
    assert code == 0
    assert "total: 1000 DP-SGD steps, epsilon 2.101" in out
    assert "unit image" in out
    assert len([line for line in out.splitlines() if line.strip().startswith(("1 ", "2 "))]) == 2


def test_ledger_of_a_folder_without_one_is_a_clear_error(tmp_path, capsys):
    assert main(["ledger", str(tmp_path)]) == 2
    assert "no privacy ledger" in capsys.readouterr().err


def test_phantom_writes_a_site_file_the_medmnist_source_reads(tmp_path, capsys):
    from common.config import config_from_dict
    from common.data.federation import load_dataset

    code = main(["phantom", str(tmp_path / "site.npz"), "--patients", "5", "--seed", "3"])
    config = config_from_dict(
        {"data": {"source": "medmnist", "medmnist": {"path": str(tmp_path / "site.npz")}}}
    )
    data = load_dataset(config)

    assert code == 0
    assert len(data) == 20
    assert data.multi_label
    assert len(set(data.patient_ids)) == 5


@pytest.mark.parametrize("command", ["evaluate", "attack"])
def test_a_gpu_asked_for_on_a_machine_without_one_is_one_line(command, tmp_path, capsys):
    from tests.helpers.run_folders import write_finished_run

    run_dir = write_finished_run(tmp_path / "run", ["data.phantom.num_patients=20"])

    code = main([command, str(run_dir), "--device", "cuda"])

    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("privsynth: error: --device=cuda") and err.count("\n") == 1
    assert "use --device=cpu or auto" in err and "Traceback" not in err


def test_a_run_set_to_cuda_is_attacked_on_the_cpu_with_device_cpu(tmp_path, capsys):
    from tests.helpers.run_folders import write_finished_run

    run_dir = write_finished_run(
        tmp_path / "run", ["data.phantom.num_patients=20", "runtime.device=cuda"]
    )
    attack = ["attack", str(run_dir), "--only", "mia-distance", "--members", "4"]

    inherited = main(attack)
    inherited_err = capsys.readouterr().err
    overridden = main([*attack, "--device", "cpu"])

    assert inherited == 2 and "use --device=cpu or auto" in inherited_err
    assert overridden == 0


def test_a_sweep_on_a_gpu_the_machine_lacks_stops_before_anything_is_written(tmp_path, capsys):
    study = tmp_path / "study"

    code = main(["sweep", "quickstart", "--study-dir", str(study), "--device", "cuda"])

    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("privsynth: error: --device=cuda") and err.count("\n") == 1
    assert not study.exists()
