"""A run folder read back as members, holdout and synthetic images."""

import numpy as np
import pytest
import torch

from common.config import config_from_dict
from common.errors import UserError
from common.models import Generator
from common.run_data import load_run, load_run_generator
from common.run_folder import RunFolder
from methods import method_for
from server.outputs import write_outputs
from tests.helpers.run_folders import write_labelled_run


def test_members_holdout_and_untrained_are_patient_disjoint_and_synthetic_is_read(tmp_path):
    write_labelled_run(tmp_path / "run", np.eye(4, dtype=np.uint8)[[0, 1, 2]])

    run = load_run(tmp_path / "run")

    everything = len(run.members) + len(run.holdout) + len(run.untrained)
    assert everything == 30 * run.config.data.options.images_per_patient
    patients = [set(part.patient_ids) for part in (run.members, run.holdout, run.untrained)]
    assert all(not a & b for i, a in enumerate(patients) for b in patients[i + 1 :])
    assert len(run.untrained_sites) == len(run.untrained)
    assert run.synthetic.labels.tolist() == np.eye(4)[[0, 1, 2]].tolist()
    assert run.synthetic.class_names == run.members.class_names


def test_a_folder_without_synthetic_images_names_the_missing_file(tmp_path):
    write_labelled_run(tmp_path / "run", np.eye(4, dtype=np.uint8)[[0]])
    missing = RunFolder(tmp_path / "run").synthetic_file
    missing.unlink()

    with pytest.raises(UserError, match=missing.name):
        load_run(tmp_path / "run")


def test_the_saved_generator_loads_back_with_its_upsampling(tmp_path):
    config = config_from_dict(
        {"name": "tiny"},
        ["model.generator_upsampling=nearest", "output.samples_per_class=2", "model.latent_dim=8"],
    )
    model = config.model
    torch.manual_seed(0)
    saved = Generator(4, model.latent_dim, model.generator_width, 32, "nearest")
    write_outputs(
        config,
        tmp_path,
        ("a", "b", "c", "d"),
        True,
        saved.state_dict(),
        {},
        loss_curves=method_for(config).loss_curves,
    )

    loaded, _, _ = load_run_generator(tmp_path)

    z, condition = torch.randn(2, 8), torch.eye(4)[:2]
    assert torch.equal(loaded(z, condition), saved.eval()(z, condition))
