"""The run folder's files written and read back through RunFolder and SiteFolder."""

import csv

import numpy as np
import pytest
import torch

from common.config import config_from_dict, config_to_yaml
from common.data.federation import plan_federation
from common.errors import UserError
from common.models import build_generator
from common.run_folder import RunFolder, SiteFolder

TINY = ["data.phantom.num_patients=10", "model.latent_dim=8", "model.generator_width=8"]


def tiny_config(*extra):
    return config_from_dict({"name": "tiny"}, [*TINY, *extra])


def test_the_config_reads_back_as_written(tmp_path):
    config = tiny_config("model.generator_upsampling=nearest")
    folder = RunFolder(tmp_path / "run")

    folder.write_config(config)

    assert folder.started
    assert config_to_yaml(folder.read_config()) == config_to_yaml(config)


def test_the_split_reads_back_as_written(tmp_path):
    split = plan_federation(tiny_config()).to_dict()
    folder = RunFolder(tmp_path / "run")

    folder.write_split(split)

    assert folder.read_split() == split


def test_stats_rows_read_back_in_order_and_a_torn_last_line_is_skipped(tmp_path):
    folder = RunFolder(tmp_path)
    rows = [{"round": r, "sites": {"site-0": {"epsilon": 0.5 * r}}} for r in (1, 2)]
    for row in rows:
        folder.append_stats(row)
    with open(folder.stats_file, "a") as log:  # killed while writing round 3
        log.write('{"round": 3, "si')

    read = folder.read_stats()

    assert read == rows


def test_no_stats_file_reads_as_no_rows(tmp_path):
    assert RunFolder(tmp_path).read_stats() == []


def test_keeping_stats_until_a_round_drops_the_later_rows(tmp_path):
    folder = RunFolder(tmp_path)
    for r in (1, 2, 3):
        folder.append_stats({"round": r, "sites": {}})

    folder.keep_stats_until(2)

    assert [row["round"] for row in folder.read_stats()] == [1, 2]
    assert folder.stats_file.read_text().endswith("\n")


def test_the_checkpoint_reads_back_as_saved(tmp_path):
    folder = RunFolder(tmp_path)
    state = {"round": 2, "generator": {"w": torch.arange(3.0)}, "stop_reason": ""}

    folder.save_checkpoint(state)

    assert folder.resumable
    loaded = folder.load_checkpoint()
    assert loaded["round"] == 2 and loaded["stop_reason"] == ""
    assert torch.equal(loaded["generator"]["w"], torch.arange(3.0))


def test_the_saved_generator_builds_the_same_network(tmp_path):
    config = tiny_config("model.generator_upsampling=nearest")
    torch.manual_seed(0)
    generator = build_generator(3, 28, config.model).eval()
    folder = RunFolder(tmp_path)

    folder.write_generator(
        state_dict=generator.state_dict(),
        class_names=("a", "b", "c"),
        multi_label=False,
        resolution=28,
        model=config.model,
    )
    saved = folder.read_generator()

    assert saved.class_names == ("a", "b", "c")
    assert saved.multi_label is False and saved.resolution == 28
    assert saved.model == config.model
    z, condition = torch.randn(2, 8), torch.eye(3)[:2]
    with torch.no_grad():
        assert torch.equal(saved.build()(z, condition), generator(z, condition))


def synthetic(count_per_row: int, conditions: list[list[int]]):
    rows = np.repeat(np.asarray(conditions, dtype=np.float32), count_per_row, axis=0)
    images = np.arange(len(rows) * 4 * 4, dtype=np.uint8).reshape(len(rows), 4, 4)
    return images, rows


def test_a_single_label_synthetic_set_keeps_class_indices(tmp_path):
    images, conditions = synthetic(2, [[1, 0], [0, 1]])
    folder = RunFolder(tmp_path)

    written = folder.write_synthetic(
        images=images,
        conditions=conditions,
        row_names=["a", "a", "b", "b"],
        class_names=("a", "b"),
        multi_label=False,
    )
    read_images, labels = folder.read_synthetic()

    assert written == 4
    assert np.array_equal(read_images, images)
    assert labels.tolist() == [[0], [0], [1], [1]]
    with open(folder.synthetic_labels, newline="") as handle:
        table = list(csv.reader(handle))
    assert table[0] == ["file", "label", "a", "b"]
    assert table[3] == ["images/000002.png", "b", "0", "1"]
    assert (folder.synthetic_dir / table[3][0]).exists()


def test_a_multi_label_synthetic_set_keeps_one_column_per_finding(tmp_path):
    images, conditions = synthetic(1, [[0, 0], [1, 1], [0, 1]])
    folder = RunFolder(tmp_path)

    folder.write_synthetic(
        images=images,
        conditions=conditions,
        row_names=["no finding", "a+b", "b"],
        class_names=("a", "b"),
        multi_label=True,
    )
    _, labels = folder.read_synthetic()

    assert labels.tolist() == [[0, 0], [1, 1], [0, 1]]
    rows = folder.synthetic_labels.read_text().splitlines()
    assert rows[1:] == ["images/000000.png,no finding,0,0", "images/000001.png,a+b,1,1"] + [
        "images/000002.png,b,0,1"
    ]


def test_later_commands_add_to_the_summary(tmp_path):
    folder = RunFolder(tmp_path)
    folder.write_summary({"rounds": 2, "epsilon_per_site": {"site-0": 1.5}})

    folder.update_summary(evaluation={"fid": 3.0})

    assert folder.trained
    assert folder.read_summary() == {
        "rounds": 2,
        "epsilon_per_site": {"site-0": 1.5},
        "evaluation": {"fid": 3.0},
    }


def test_an_unfinished_run_has_no_summary_to_update(tmp_path):
    folder = RunFolder(tmp_path)

    folder.update_summary(evaluation={"fid": 3.0})

    assert not folder.trained and folder.read_summary() == {}


def test_a_missing_file_is_named_with_its_folder(tmp_path):
    folder = RunFolder(tmp_path / "run")
    folder.write_config(tiny_config())

    with pytest.raises(UserError) as error:
        folder.read_synthetic()

    assert str(folder.synthetic_file) in str(error.value)
    assert f"Is {folder.path} a finished" in str(error.value)


def test_a_missing_run_folder_is_named(tmp_path):
    folder = RunFolder(tmp_path / "nowhere")

    with pytest.raises(UserError, match="does not exist") as error:
        folder.read_config()

    assert str(folder.path) in str(error.value)


def test_a_sites_ledger_files_are_its_simulated_and_its_dataset_ledgers(tmp_path):
    site = RunFolder(tmp_path).site(1)
    for path in (site.ledger, site.dataset_ledger("cxr"), site.dataset_ledger("ct")):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}")
    (site.dataset_ledger("cxr").parent / "notes.txt").write_text("not a ledger")

    files = site.ledger_files()

    assert files == [site.ledger, site.dataset_ledger("ct"), site.dataset_ledger("cxr")]
    assert site.path.name == "site-1"


def test_a_deployed_sites_runs_keep_their_own_state(tmp_path):
    site = SiteFolder(tmp_path / "state")

    first, second = site.run_state("a1"), site.run_state("b2")

    assert first.training_state != second.training_state
    assert first.last_reply.parent == first.path
    assert site.ledger_files() == []
