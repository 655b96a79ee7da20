"""How a site finds its data, policy and state directory.

Simulation: the site is partition `partition-id` of the configured dataset, planned the same
way in every process; its state lives in the run folder. Only `privsynth run`'s simulation
runtime makes simulated sites (it sets SIMULATION_ENV in their processes); any other node is a
deployed site, whatever its node config holds. Deployment: the SuperNode's settings
(`site.yaml` via `--node-config site-config=...`, or individual node config keys) name the
site's own data, how to read it, its privacy settings and its state directory; the server's
config supplies only what client/server_settings.py lists, within the site's ranges. A deployed
site trains on every unit of its data (or of its own `data.split`): which units it trains on
is decided unit by unit, never by a draw over all of them. The privacy ledger lives in the
site's state directory, keyed by the dataset, so a new run or a restarted SuperNode continues
it.
"""

import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from client.server_settings import SERVER_ONLY
from client.site import RoundRefused, Site, SitePolicy
from client.site_settings import SiteSettings, load_site_settings, site_data_section
from common.config import Config, ConfigValueError, SiteBudget, config_from_dict, config_to_dict
from common.data import ImageSet
from common.data.federation import declared_class_names, load_dataset, plan_federation
from common.device import resolve_device
from common.errors import UserError
from common.prior.file import load_prior
from common.protocol import SIMULATION_ENV, SiteError
from common.run_folder import RunFolder, SiteFolder, site_name


def simulated_site(config: Config, partition_id: int, run_dir: Path) -> Site:
    plan = plan_federation(config)
    name = site_name(partition_id)
    state = RunFolder(run_dir).site(partition_id)
    return Site(
        policy=SitePolicy(
            name=name,
            budget=config.site_budget(partition_id),
            unit=config.privacy.unit,
            accountant=config.privacy.accountant,
            share_discriminator=True,
        ),
        data=plan.site_data(partition_id),
        ledger_path=state.ledger,
        run_state_dir=state.path,
        # The simulation's sites share the operator's machine and its priors/.
        prior=load_prior(config.model.prior, config) if config.model.prior else None,
    )


def _budget(settings: SiteSettings) -> SiteBudget:
    own = settings.privacy
    try:
        return SiteBudget(
            target_epsilon=own.target_epsilon, delta=own.delta, max_epsilon=own.max_epsilon
        )
    except ConfigValueError as error:
        raise UserError(f"site {settings.name}: privacy.{error.key} {error.message}") from None


def _check_classes(settings: SiteSettings, config: Config, name: str) -> None:
    """The site's declared classes against the federation's: settings against the request,
    so whether it refuses does not depend on the data."""
    federation = declared_class_names(config)
    if federation and tuple(settings.class_names) != tuple(federation):
        raise RoundRefused(
            SiteError.REFUSED_POLICY,
            f"site {name}: it declares classes {list(settings.class_names)} but the federation "
            f"trains on {list(federation)}; the consortium must agree on one label list",
        )


def with_site_prior(config: Config, settings: SiteSettings, name: str) -> Config:
    """The request's config with the site's own prior (site.yaml `prior`, or none) in place of
    the server's model.prior, which names a file on the server's machine."""
    raw = config_to_dict(config)
    raw["model"]["prior"] = settings.prior
    # The server's fit settings were checked against the server's prior, and a site never
    # reads them: here they take their defaults, so none can refuse the site's own prior.
    for key in SERVER_ONLY:
        section, _, field = key.partition(".")
        if section == "mean_embedding":
            del raw[section][field]
    try:
        config = config_from_dict(raw)
        if settings.prior:
            load_prior(settings.prior, config)  # there, readable, and fits the model
        return config
    except UserError as error:
        raise UserError(
            f"site {name}: {error}; the site's prior is `prior` in its site.yaml"
        ) from None


def deployed_site(config: Config, settings: SiteSettings, node_id: int, run_dir: str) -> Site:
    name = settings.name or f"node-{node_id}"
    _check_classes(settings, config, name)
    data_path = Path(settings.data.path).expanduser()
    if not data_path.exists():
        raise UserError(
            f"site {name}: data path {data_path} does not exist; fix data.path in site.yaml "
            "or --node-config data-path"
        )
    raw = config_to_dict(config)
    raw["data"] = site_data_section(settings, raw["data"])
    # Only the data is read under this config; the privacy settings are the site's own.
    raw["privacy"] = {}
    site_config = config_from_dict(raw)
    state = SiteFolder(Path(settings.state_dir).expanduser())
    # Each Deployment Engine message runs in a fresh process: decode the images once.
    data = load_dataset(site_config, cache_dir=state.cache)
    unit = settings.privacy.unit
    if unit == "patient" and not data.has_patient_ids:
        raise UserError(
            f"site {name}: privacy unit is 'patient' but {data_path} has no patient IDs; "
            "set privacy.unit: image or add patient IDs"
        )
    # No holdout and no refusal of an empty dataset: either would make which units train, or
    # whether the site replies at all, depend on other units than the one added or removed.
    data = training_units(data, settings.data.split, name)
    run_key = hashlib.sha256(str(run_dir).encode()).hexdigest()[:12]
    return Site(
        policy=SitePolicy(
            name=name,
            budget=_budget(settings),
            unit=unit,
            accountant=settings.privacy.accountant,
            share_discriminator=settings.outputs.discriminator,
            max_grad_norm=settings.privacy.max_grad_norm,
            min_noise_multiplier=settings.privacy.min_noise_multiplier,
        ),
        data=data,
        ledger_path=state.dataset_ledger(settings.ledger_key),
        run_state_dir=state.run_state(run_key).path,
        prior=load_prior(config.model.prior, config) if config.model.prior else None,
    )


def training_units(data: ImageSet, split: str, name: str) -> ImageSet:
    """The units of the site's own `data.split` (all, if it names none): a filter on each
    image's own split label."""
    if not split:
        return data
    if data.splits is None:
        raise UserError(
            f"site {name}: data.split is {split!r} but its data format has no split labels; "
            "remove data.split from site.yaml"
        )
    return data.subset(np.flatnonzero(data.splits == split))


def is_deployed(node_config: dict) -> bool:
    """Every node but a simulation's: the simulation runtime marks its sites' processes, and
    a simulated site gets only Flower's partition keys."""
    simulated = os.environ.get(SIMULATION_ENV) == "1" and set(node_config) <= {
        "partition-id",
        "num-partitions",
    }
    return not (simulated and "partition-id" in node_config)


def site_settings(node_config: dict) -> SiteSettings | None:
    """A deployed site's own settings; None for a simulated site."""
    return load_site_settings(node_config) if is_deployed(node_config) else None


def site_device(config: Config, settings: SiteSettings | None) -> torch.device:
    """Where the site computes this round: a deployed site's own `device` setting, a simulated
    site the run's runtime.device (every simulated site shares the server's machine)."""
    if settings is None:
        return resolve_device(config.runtime.device)
    return resolve_device(settings.device, key="device")


def site_from_context(
    config: Config,
    node_config: dict,
    node_id: int,
    run_dir: str,
    settings: SiteSettings | None = None,
) -> Site:
    """`settings`: the deployed site's, if already read (see site_settings)."""
    if not is_deployed(node_config):
        num_partitions = int(node_config.get("num-partitions", config.federation.num_sites))
        if num_partitions != config.federation.num_sites:
            raise UserError(
                f"the simulation has {num_partitions} nodes but federation.num_sites is "
                f"{config.federation.num_sites}; make them equal"
            )
        return simulated_site(config, int(node_config["partition-id"]), Path(run_dir))
    return deployed_site(config, settings or load_site_settings(node_config), node_id, run_dir)
