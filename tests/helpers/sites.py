"""Sites under test: their site.yaml, a site on small in-memory data, and the requests a
server sends them."""

from pathlib import Path

import numpy as np
import torch
import yaml
from flwr.app import ArrayRecord, ConfigRecord, MetricRecord, RecordDict

from client.site import Site, SitePolicy
from client.site_config import site_from_context
from common.config import Config, SiteBudget, config_from_dict
from common.data import ImageSet
from common.models import build_models
from common.protocol import DP_METRICS, RoundRequest, SiteError, TrainRequest, encode_request
from common.run_folder import SiteFolder

SITE_YAML = "site.yaml"

# ---- site.yaml ---------------------------------------------------------------------------


def write_site_yaml(folder: Path, *, file_name: str = SITE_YAML, **settings) -> dict[str, str]:
    """Writes `settings` (site.yaml's top-level keys: name, state_dir, data, privacy,
    outputs; paths may be Path objects) to folder / file_name; returns the node config that
    names the file."""
    path = Path(folder) / file_name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(_plain(settings)))
    return {"site-config": str(path)}


def node_config_option(node_config: dict[str, str]) -> str:
    """A node config as the string a SuperNode's --node-config takes."""
    return " ".join(f'{key}="{value}"' for key, value in node_config.items())


def _plain(value):
    """`value` with Path objects as strings, for yaml.safe_dump."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return str(value) if isinstance(value, Path) else value


def medmnist_site_yaml(tmp_path: Path, data_path: Path, **overrides) -> dict[str, str]:
    """Node config naming a complete site.yaml for `data_path` (a MedMNIST .npz).

    `overrides` has dotted keys ("privacy.unit"); a value of None removes the key."""
    settings = {
        "name": "site-x",
        "state_dir": str(tmp_path / "s"),
        "data": {
            "path": str(data_path),
            "format": "medmnist",
            "options": {"class_names": ["a", "b"]},
        },
        "privacy": {"target_epsilon": 4.0, "delta": 1e-5, "unit": "image", "accountant": "rdp"},
    }
    for dotted, value in overrides.items():
        *sections, last = dotted.split(".")
        node = settings
        for section in sections:
            node = node[section]
        if value is None:
            node.pop(last)
        else:
            node[last] = value
    return write_site_yaml(tmp_path, **settings)


# ---- sites -------------------------------------------------------------------------------

# What the server asks of the sites in the site tests: 28 px, 8-wide models, batches of 8.
CONFIG = config_from_dict(
    {
        "data": {"resolution": 28},
        "model": {"latent_dim": 8, "generator_width": 8, "discriminator_width": 8},
        "training": {"batch_size": 8},
    }
)

# A deployment's server config: the data path means nothing outside the site.
SERVER_CONFIG = config_from_dict(
    {
        "data": {
            "source": "medmnist",
            "resolution": 28,
            "holdout_fraction": 0.0,
            "medmnist": {"path": "only-the-site-has-it.npz", "class_names": ["a", "b"]},
        }
    }
)


def make_data(n=40, patients=10):
    rng = np.random.default_rng(0)
    return ImageSet(
        images=rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
        labels=np.eye(2, dtype=np.float32)[rng.integers(0, 2, n)],
        class_names=("a", "b"),
        multi_label=False,
        patient_ids=np.array([f"p{i % patients}" for i in range(n)]),
    )


def make_site(tmp_path, epsilon=4.0, max_epsilon=None, unit="image", size_estimate=None, **policy):
    """A site on make_data(); `size_estimate` arranges its ledger's DP size estimate (in
    units) so a test can pin the sample rate."""
    policy = SitePolicy(
        name="site-x",
        budget=SiteBudget(epsilon, 1e-5, max_epsilon),
        unit=unit,
        accountant="rdp",
        share_discriminator=policy.pop("share_discriminator", True),
        **policy,
    )
    site = Site(
        policy=policy,
        data=make_data(),
        ledger_path=SiteFolder(tmp_path / "site").ledger,
        run_state_dir=tmp_path / "site",
    )
    if size_estimate is not None:
        ledger = site.open_ledger()
        with ledger.transaction():
            ledger.record_size_estimate(round_number=0, estimate=size_estimate)
    return site


def deployed_site(config, node_config, node_id=1, run_dir="run-1"):
    return site_from_context(config, node_config, node_id, run_dir)


# ---- requests ----------------------------------------------------------------------------


def generator_state(config: Config = CONFIG):
    generator, _ = build_models(2, 28, config.model)
    return generator.state_dict()


def request(round_number, steps=5, planned=10):
    return RoundRequest(round_number, steps, planned, share_discriminator=True)


def run(site, round_number, steps=5, planned=10):
    return site.run_round(
        CONFIG, request(round_number, steps, planned), generator_state(), None, torch.device("cpu")
    )


# The server config of encoded_requests(); METHOD is the training method.
SERVER_YAML = """
seed: 3
data:
  source: medmnist
  resolution: 28
  holdout_fraction: 0.2
  medmnist: {path: only-the-sites-have-data.npz, class_names: [a, b]}
model: {latent_dim: 8, generator_width: 8, discriminator_width: 8}
training: {batch_size: 8, method: METHOD}
mean_embedding: {frequencies: 16}
"""
# (round, local steps, planned steps) of each request; a DP-GAN site's third is over budget.
ROUNDS = {
    "dpgan": [(1, 2, 4), (2, 2, 4), (3, 2, 4)],
    "mean_embedding": [(1, 1, 1), (2, 1, 1)],
}
SHARES_DISCRIMINATOR = ("dpgan",)
# Whether the last request is over budget (for a site whose target epsilon is 3): a third
# DP-GAN round is; a second release gets what is left of the budget.
LAST_REFUSED = {"dpgan": True, "mean_embedding": False}


def encoded_requests(method: str) -> list[RecordDict]:
    """The ROUNDS[method] train requests as Flower sends them, for a site's request handler."""
    config_yaml = SERVER_YAML.replace("METHOD", method)
    config = config_from_dict(yaml.safe_load(config_yaml))
    torch.manual_seed(0)
    generator, discriminator = build_models(2, 28, config.model)
    rounds = ROUNDS[method]
    return [
        encode_request(
            TrainRequest(
                RoundRequest(number, steps, planned, share_discriminator=True),
                config_yaml,
                "/runs/probe",
                generator.state_dict(),
                discriminator.state_dict() if method in SHARES_DISCRIMINATOR else None,
            )
        )
        for number, steps, planned in rounds
    ]


def public_view(reply: RecordDict | SiteError) -> object:
    """What a reply shows that is not a DP output: array names and shapes, the metrics other
    than DP_METRICS, the config records, or the error code."""
    if isinstance(reply, SiteError):
        return ("error", int(reply))
    view = {}
    for name, record in reply.items():
        if isinstance(record, ArrayRecord):
            view[name] = {key: tuple(array.shape) for key, array in record.items()}
        elif isinstance(record, MetricRecord):
            view[name] = {key: v for key, v in record.items() if key not in DP_METRICS}
        else:
            assert isinstance(record, ConfigRecord)
            view[name] = dict(record)
    return view
