"""A malicious coordinator's requests, generated: whatever it sends, two deployed sites whose
data differ by one unit (an image, or a patient) answer alike but for their DP outputs, those
outputs are finite, and without noise they differ by no more than the sensitivity their
ledgers charged for.

The noise is switched off by a test-only seam (`unnoised`): the release's Gaussian noise, the
size estimate's, and the DP-SGD noise's place (the clipped sum is read before Opacus adds
it); the two sites draw their secret batches and generated images from one fixed seed, so
that the only difference between them is the unit. The DP-SGD sum is compared where every
unit is in the batch (sample rate 1) and a unit is one image: then the first step's clipped
sums differ by exactly the added image's clipped gradient.

Below the property test, each finding of the review that asked for it, pinned.
"""

import math
import tempfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from flwr.app import ArrayRecord, ConfigRecord, RecordDict
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from client import mean_embedding as site_release
from client.mean_embedding import unit_contributions
from client.per_sample_clipping import PerSampleClipping
from client.training import DPGANTrainer
from common.config import config_from_dict, set_dotted
from common.data import ImageSet
from common.mean_embedding import RandomFourierFeatures, release_weights
from common.models import build_models
from common.prior.file import prior_hash
from common.protocol import SiteError
from methods import dpgan as dpgan_method
from tests.helpers.neighbours import (
    ask,
    assert_alike_but_for_dp_outputs,
    deployed_site,
    neighbour_data,
    site_ledger,
)
from tests.helpers.priors import build_prior
from tests.helpers.sites import public_view

# The server config every generated request starts from; the strategies below override it.
BASE = {
    "seed": 3,
    "data": {
        "source": "medmnist",
        "resolution": 28,
        "holdout_fraction": 0.0,
        "medmnist": {"path": "only-the-sites-have-data.npz", "class_names": ["a", "b"]},
    },
    "model": {"latent_dim": 8, "generator_width": 8, "discriminator_width": 8},
    "training": {"batch_size": 8, "method": "dpgan"},
    "mean_embedding": {"frequencies": 16},
}
# Rounding in float32 sums of 40 rows of norm <= 1.
TOLERANCE = 1e-3

# ---- the seam ------------------------------------------------------------------------------


@pytest.fixture
def unnoised(monkeypatch) -> list[torch.Tensor]:
    """No noise anywhere, one fixed secret seed; returns the list each DP-SGD step's clipped
    sum (before its noise) is appended to."""
    monkeypatch.setattr(site_release, "add_release_noise", _noiseless)
    monkeypatch.setattr(dpgan_method, "os_normal", lambda: 0.0)
    monkeypatch.setattr(dpgan_method, "DPGANTrainer", partial(DPGANTrainer, secret_seed=0))
    sums: list[torch.Tensor] = []
    backward = PerSampleClipping.backward

    def recording_backward(self, loss):
        backward(self, loss)
        sums.append(torch.cat([p.grad.flatten() for p in self.module.parameters()]).double())

    monkeypatch.setattr(PerSampleClipping, "backward", recording_backward)
    return sums


def _noiseless(total, *, noise_multiplier, generator=None):
    return total


# ---- what a coordinator may send -------------------------------------------------------------


def mostly(usual, hostile):
    """`usual` seven times in eight: most requests must get past the range checks to the
    data, where the mechanisms are."""
    return st.one_of(*[usual] * 7, hostile)


special = st.sampled_from([math.nan, math.inf, -1.0, 0.0])
positive = mostly(st.floats(1e-3, 1e3), st.one_of(st.floats(1e-300, 1e300), special))

SETTINGS = {
    "seed": mostly(st.integers(0, 2**63 - 1), st.integers(-3, -1) | st.just(2**64)),
    "data.holdout_fraction": st.floats(0.0, 0.9),
    "data.holdout_split": st.sampled_from(["", "train", "val"]),
    "mean_embedding.bandwidth": mostly(st.sampled_from([0.01, 0.1, 100.0]), positive),
    "mean_embedding.frequencies": mostly(st.integers(1, 64), st.integers(5000, 40000)),
    "mean_embedding.count_share": mostly(st.none() | st.floats(0.001, 0.999), positive),
    "mean_embedding.pooling": st.sampled_from([1, 2, 4, 7, 14, 28, 3]),
    "training.batch_size": mostly(st.integers(1, 60), st.sampled_from([0, 5000, 10**6])),
    "training.discriminator_lr": mostly(st.sampled_from([1e-8, 1.0]), positive),
    "training.generator_lr": mostly(st.sampled_from([1e-8, 1.0]), positive),
    "training.mode_seeking_weight": mostly(st.sampled_from([0.0, 100.0]), positive),
    "training.discriminator_steps_per_generator_step": st.integers(1, 2),
    "training.generator_step_threshold": st.floats(0.0, 1.0),
    "training.augmentation": st.booleans(),
    "privacy.max_grad_norm": mostly(st.sampled_from([1e-4, 1.0, 1e4]), positive),
    "privacy.noise_multiplier": mostly(st.none() | st.floats(0.01, 10.0), positive),
    "runtime.threads_per_site": mostly(st.integers(1, 2), st.sampled_from([0, 10**6])),
    "model.latent_dim": mostly(st.integers(1, 8), st.just(2000)),
    # The sites here hold no prior: any share of prior features is refused alike.
    "mean_embedding.prior_features": mostly(st.floats(0.0, 1.0), special),
    "model.prior": st.sampled_from(["", "chest-28", "/etc", "../../priors/phantom-32"]),
}
# Multiplies every weight of the chosen model part; nan/inf are placed in one weight.
WEIGHT_SCALES = [0.0, 1e-30, 1.0, 1e10, 1e30, 2.2e37, math.nan, math.inf]


@dataclass(frozen=True)
class HostileRequest:
    content: RecordDict
    raw: dict  # the server config it carries
    description: str

    def __repr__(self) -> str:  # the weights would fill pages
        return self.description


@st.composite
def hostile_requests(draw) -> HostileRequest:
    """An encoded train request, generated."""
    raw = yaml.safe_load(yaml.safe_dump(BASE))
    raw["training"]["method"] = draw(
        st.sampled_from(["dpgan", "mean_embedding", "mean_embedding_dpgan"])
    )
    for key in draw(st.sets(st.sampled_from(sorted(SETTINGS)), max_size=4)):
        set_dotted(raw, key, draw(SETTINGS[key]))
    local_steps = draw(st.sampled_from([1, 2]))
    fields = {
        "round": draw(st.sampled_from([1, 2])),
        "local_steps": local_steps,
        "planned_steps": local_steps * draw(st.sampled_from([1, 2])),
        "share_discriminator": draw(st.booleans()),
        "config": yaml.safe_dump(raw),
        "run_dir": "/runs/probe",
    }
    if draw(st.integers(0, 4)) == 0:
        broken = draw(st.sampled_from(["round", "local_steps", "planned_steps"]))
        fields[broken] = draw(st.sampled_from([0, -4, 10**8]))
    generator, discriminator = _weights(raw)
    part = draw(st.sampled_from(["none"] * 3 + ["discriminator", "first", "generator", "shape"]))
    scale = draw(st.sampled_from(WEIGHT_SCALES))
    _tamper(generator, discriminator, part=part, scale=scale)
    content = RecordDict({"generator": ArrayRecord(generator), "request": ConfigRecord(fields)})
    sends_discriminator = draw(st.booleans())
    if sends_discriminator:
        content["discriminator"] = ArrayRecord(discriminator)
    fields.pop("config")
    description = (
        f"request {fields}, weights: {part} x {scale}, discriminator sent: "
        f"{sends_discriminator}, config {raw}"
    )
    return HostileRequest(content, raw, description)


def _weights(raw: dict) -> tuple[dict, dict]:
    """The model the config describes, or the base model where the config is invalid."""
    try:
        model = config_from_dict(raw).model
    except Exception:  # noqa: BLE001 - an invalid config is a legitimate hostile request
        model = config_from_dict(BASE).model
    torch.manual_seed(1)
    generator, discriminator = build_models(2, 28, model)
    return generator.state_dict(), discriminator.state_dict()


def _tamper(generator: dict, discriminator: dict, *, part: str, scale: float) -> None:
    if part == "shape":
        key = next(iter(discriminator))
        discriminator[key] = discriminator[key].flatten()[:-1]
        return
    targets = {
        "none": [],
        "discriminator": list(discriminator.values()),
        "first": [next(iter(discriminator.values()))],
        "generator": list(generator.values()),
    }[part]
    for weights in targets:
        if math.isfinite(scale):
            weights.mul_(scale)
        else:
            weights.view(-1)[0] = scale


# ---- what the coordinator learns ---------------------------------------------------------------


def unnoised_release_total(reply: RecordDict, raw: dict) -> torch.Tensor:
    """The release's weighted sums: what the Gaussian mechanism's sensitivity bounds."""
    release = reply["release"].to_torch_state_dict()
    dim = release["feature_sums"].shape[1]
    feature_weight, count_weight = release_weights(dim, raw["mean_embedding"].get("count_share"))
    return torch.cat(
        [
            feature_weight * release["feature_sums"].double().flatten(),
            count_weight * release["counts"].double(),
        ]
    )


def _note(outcome: str) -> None:
    """What the generated requests reached (pytest --hypothesis-show-statistics)."""
    if currently_in_test_context():
        event(outcome)


def check_neighbours(
    full: dict, neighbour: dict, request: RecordDict, raw: dict, sums: list, unit: str
) -> None:
    sums.clear()
    full_reply = ask(full, request)
    full_sums = list(sums)
    sums.clear()
    neighbour_reply = ask(neighbour, request)

    assert_alike_but_for_dp_outputs(full_reply, neighbour_reply)
    if isinstance(full_reply, SiteError):
        _note(f"both refused: {full_reply.name}")
        return
    _note("both replied: " + ", ".join(sorted(set(full_reply) & {"release", "discriminator"})))
    if "release" in full_reply:
        moved = unnoised_release_total(full_reply, raw) - unnoised_release_total(
            neighbour_reply, raw
        )
        assert float(moved.norm()) <= 1 + TOLERANCE
    every_unit = full_reply["metrics"]["sample_rate"] == 1.0
    if full_sums and sums and every_unit and unit == "image":
        clip = float(raw["privacy"]["max_grad_norm"]) if "privacy" in raw else 1.0
        assert float((full_sums[0] - sums[0]).norm()) <= clip * (1 + TOLERANCE)


@pytest.mark.parametrize("unit", ["image", "patient"])
@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(generated=hostile_requests())
def test_no_request_tells_neighbouring_sites_apart(unnoised, unit, generated):
    with tempfile.TemporaryDirectory() as scratch:
        full = deployed_site(Path(scratch, "full"), neighbour_data(drop="none", bright=True), unit)
        neighbour = deployed_site(
            Path(scratch, "neighbour"), neighbour_data(drop=unit, bright=True), unit
        )

        check_neighbours(full, neighbour, generated.content, generated.raw, unnoised, unit)


@pytest.mark.parametrize("unit", ["image", "patient"])
@pytest.mark.parametrize(
    "data", [{}, {"holdout_fraction": 0.2}, {"holdout_fraction": 0.5, "holdout_split": "val"}]
)
def test_size_estimates_of_neighbours_differ_by_at_most_one_unit(tmp_path, unnoised, unit, data):
    raw = yaml.safe_load(yaml.safe_dump(BASE))
    raw["data"].update(data)
    request = _request(raw, round_number=1, local_steps=1)
    estimates = []
    for name, drop in (("full", "none"), ("neighbour", unit)):
        folder = tmp_path / name
        node_config = deployed_site(folder, neighbour_data(drop=drop), unit, size_estimate=None)
        ask(node_config, request)
        estimates.append(site_ledger(folder, unit).unit_count_estimate)

    assert abs(estimates[0] - estimates[1]) <= 1


def _request(raw: dict, *, round_number: int, local_steps: int, weights=None) -> RecordDict:
    generator, discriminator = weights or _weights(raw)
    fields = {
        "round": round_number,
        "local_steps": local_steps,
        "planned_steps": local_steps,
        "share_discriminator": True,
        "config": yaml.safe_dump(raw),
        "run_dir": "/runs/probe",
    }
    content = RecordDict({"generator": ArrayRecord(generator), "request": ConfigRecord(fields)})
    if raw["training"]["method"] != "mean_embedding":
        content["discriminator"] = ArrayRecord(discriminator)
    return content


# ---- the review's findings, pinned ---------------------------------------------------------------


@pytest.mark.parametrize("unit", ["image", "patient"])
def test_finding_1_a_vanishing_bandwidth_cannot_make_the_release_nan(tmp_path, unnoised, unit):
    raw = yaml.safe_load(yaml.safe_dump(BASE))
    raw["training"]["method"] = "mean_embedding"
    raw["mean_embedding"].update({"bandwidth": 1.01e-38, "frequencies": 5000})
    full = deployed_site(tmp_path / "full", neighbour_data(drop="none", bright=True), unit)
    neighbour = deployed_site(tmp_path / "neighbour", neighbour_data(drop=unit, bright=True), unit)

    check_neighbours(
        full, neighbour, _request(raw, round_number=1, local_steps=1), raw, unnoised, unit
    )


def test_finding_1_overflowing_features_clip_every_unit_to_a_finite_row():
    # The features as a bandwidth below the site's range would make them: the clip itself
    # must hold, whatever the range check lets through.
    features = RandomFourierFeatures(28, 5000, (1.01e-38,), seed=3)
    data = neighbour_data(drop="none", bright=True)

    rows = unit_contributions(data, np.arange(len(data)).astype(str), features)

    assert torch.isfinite(rows).all()
    assert (rows.norm(dim=1) <= 1 + 1e-5).all()


def test_finding_2_an_overflowing_discriminator_cannot_make_dp_sgd_nan(tmp_path, unnoised):
    raw = yaml.safe_load(yaml.safe_dump(BASE))
    raw["training"]["batch_size"] = 40
    generator, discriminator = _weights(raw)
    for weights in (*generator.values(), *discriminator.values()):
        weights.zero_()
    first = next(iter(discriminator))
    discriminator[first].fill_(2.2e37)
    request = _request(raw, round_number=1, local_steps=1, weights=(generator, discriminator))
    full = deployed_site(tmp_path / "full", neighbour_data(drop="none", bright=True), "image")
    neighbour = deployed_site(
        tmp_path / "neighbour", neighbour_data(drop="image", bright=True), "image"
    )

    check_neighbours(full, neighbour, request, raw, unnoised, "image")

    assert len(unnoised) == 1  # the neighbour's step: it trained, on finite sums


def test_finding_3_a_server_holdout_cannot_move_other_units(tmp_path, unnoised):
    raw = yaml.safe_load(yaml.safe_dump(BASE))
    raw["training"]["method"] = "mean_embedding"
    raw["data"]["holdout_fraction"] = 0.2
    full = deployed_site(tmp_path / "full", neighbour_data(drop="none"), "patient")
    neighbour = deployed_site(tmp_path / "neighbour", neighbour_data(drop="patient"), "patient")

    check_neighbours(
        full, neighbour, _request(raw, round_number=1, local_steps=1), raw, unnoised, "patient"
    )


def test_finding_4_a_split_name_cannot_probe_for_one_film(tmp_path):
    raw = yaml.safe_load(yaml.safe_dump(BASE))
    raw["training"]["method"] = "mean_embedding"
    raw["data"]["holdout_split"] = "val"
    request = _request(raw, round_number=1, local_steps=1)
    train = neighbour_data(drop="image")
    val_film = neighbour_data(drop="none").subset(np.array([39]))
    replies = []
    for name, extra in (("with", val_film), ("without", None)):
        path = tmp_path / name / "data.npz"
        write_two_splits(train, extra, path)
        replies.append(ask(deployed_site(tmp_path / name, path, "image"), request))

    assert public_view(replies[0]) == public_view(replies[1])
    assert not isinstance(replies[0], SiteError)


def write_two_splits(train: ImageSet, val: ImageSet | None, path: Path) -> None:
    """A MedMNIST file with a train split and, if given, a val split."""
    arrays = {
        "train_images": train.images,
        "train_labels": train.labels.argmax(axis=1)[:, None].astype(np.uint8),
    }
    if val is not None:
        arrays["val_images"] = val.images
        arrays["val_labels"] = val.labels.argmax(axis=1)[:, None].astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)


# Finding 5 (a SuperNode with only partition keys taken for a simulated site) is pinned in
# tests/client/test_app.py: test_a_supernode_with_only_partition_keys_is_deployed_and_refuses.


# ---- a site's own public prior -----------------------------------------------------------------


@pytest.fixture(scope="module")
def site_prior(tmp_path_factory) -> Path:
    """A prior for BASE's models, the sites' own copy."""
    _, out = build_prior(tmp_path_factory.mktemp("prior"))
    return out


@pytest.mark.parametrize("unit", ["image", "patient"])
@pytest.mark.parametrize("method", ["mean_embedding", "mean_embedding_dpgan"])
def test_a_release_in_the_sites_own_prior_features_moves_by_at_most_one_unit(
    tmp_path, unnoised, site_prior, unit, method
):
    raw = yaml.safe_load(yaml.safe_dump(BASE))
    raw["training"]["method"] = method
    raw["mean_embedding"]["prior_features"] = 0.5
    raw["model"]["prior"] = "/the/servers/own/copy"  # never read by a deployed site
    data = {"none": neighbour_data(drop="none", bright=True)}
    data[unit] = neighbour_data(drop=unit, bright=True)
    full = deployed_site(tmp_path / "full", data["none"], unit, prior=site_prior)
    neighbour = deployed_site(tmp_path / "neighbour", data[unit], unit, prior=site_prior)
    request = _request(raw, round_number=1, local_steps=1)

    check_neighbours(full, neighbour, request, raw, unnoised, unit)

    entries = site_ledger(tmp_path / "full", unit).entries
    assert [e.prior for e in entries if e.mechanism == "release"] == [prior_hash(site_prior)]
    another = deployed_site(tmp_path / "another", data["none"], unit, prior=site_prior)
    release = ask(another, request)["release"].to_torch_state_dict()
    assert release["feature_sums"].shape[1] > 2 * raw["mean_embedding"]["frequencies"]


def test_a_site_without_a_prior_refuses_prior_features_whatever_path_the_server_names(
    tmp_path, site_prior
):
    raw = yaml.safe_load(yaml.safe_dump(BASE))
    raw["training"]["method"] = "mean_embedding"
    raw["mean_embedding"]["prior_features"] = 0.5
    raw["model"]["prior"] = str(site_prior)  # a prior the site's machine does hold
    node_config = deployed_site(tmp_path / "site", neighbour_data(drop="none"), "image")

    reply = ask(node_config, _request(raw, round_number=1, local_steps=1))

    assert reply == SiteError.REFUSED_POLICY


def test_a_site_without_a_prior_answers_a_server_that_fits_its_own_priors_input_layers(
    tmp_path,
):
    raw = yaml.safe_load(yaml.safe_dump(BASE))
    raw["training"]["method"] = "mean_embedding"
    raw["mean_embedding"]["generator_layers"] = "input"  # the server's fit, not the site's
    raw["model"]["prior"] = "/the/servers/own/copy"
    node_config = deployed_site(tmp_path / "site", neighbour_data(drop="none"), "image")

    reply = ask(node_config, _request(raw, round_number=1, local_steps=1))

    assert not isinstance(reply, SiteError)


def test_a_deployed_sites_discriminator_starts_from_its_own_prior_not_the_servers(
    tmp_path, site_prior
):
    raw = yaml.safe_load(yaml.safe_dump(BASE))
    raw["model"]["prior"] = "/the/servers/own/copy"
    request = _request(raw, round_number=1, local_steps=1)
    del request["discriminator"]  # the site trains its own
    with_prior = deployed_site(
        tmp_path / "own",
        neighbour_data(drop="none"),
        "image",
        share_discriminator=False,
        prior=site_prior,
    )
    without = deployed_site(
        tmp_path / "none", neighbour_data(drop="none"), "image", share_discriminator=False
    )

    assert not isinstance(ask(with_prior, request), SiteError)
    assert not isinstance(ask(without, request), SiteError)

    steps = [e for e in site_ledger(tmp_path / "own", "image").entries if e.mechanism == "dp-sgd"]
    assert [e.prior for e in steps] == [prior_hash(site_prior)]
    steps = [e for e in site_ledger(tmp_path / "none", "image").entries if e.mechanism == "dp-sgd"]
    assert [e.prior for e in steps] == [""]
