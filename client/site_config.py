"""How a site finds its data, policy and state directory.

Simulation: the site is partition `partition-id` of the configured dataset, planned the same
way in every process; its state lives in the run folder. Deployment: the SuperNode's settings
(`site.yaml` via `--node-config site-config=...`, or individual node config keys) name the
site's own data, budget and state directory, and win over the server's config. Its privacy
ledger is keyed by the dataset, so a new run or a restarted SuperNode continues it.
"""

import hashlib
from pathlib import Path

import numpy as np

from client.site import Site, SitePolicy
from client.site_settings import SiteSettings, load_site_settings, site_data_section
from common.config import Config, ConfigValueError, SiteBudget, config_from_dict, config_to_dict
from common.data.federation import declared_class_names, load_dataset, plan_federation
from common.data.splits import split_holdout
from common.errors import UserError


def simulated_site(config: Config, partition_id: int, run_dir: Path) -> Site:
    plan = plan_federation(config)
    name = f"site-{partition_id}"
    state_dir = Path(run_dir) / "sites" / name
    return Site(
        policy=SitePolicy(
            name=name,
            budget=config.site_budget(partition_id),
            unit=config.privacy.unit,
            accountant=config.privacy.accountant,
            share_discriminator=True,
        ),
        data=plan.site_data(partition_id),
        ledger_path=state_dir / "ledger.json",
        run_state_dir=state_dir,
    )


def _budget(settings: SiteSettings, config: Config) -> SiteBudget:
    """The site's own budget; what it leaves out comes from the federation's config."""
    own, federation = settings.privacy, config.site_budget(0)
    max_epsilon = own.max_epsilon or federation.max_epsilon
    target = own.target_epsilon or federation.target_epsilon
    if own.target_epsilon is None and max_epsilon is not None:
        target = min(target, max_epsilon)
    try:
        return SiteBudget(
            target_epsilon=target,
            delta=own.delta or federation.delta,
            max_epsilon=max_epsilon,
        )
    except ConfigValueError as error:
        raise UserError(f"site {settings.name}: privacy.{error.key} {error.message}") from None


def deployed_site(config: Config, settings: SiteSettings, node_id: int, run_dir: str) -> Site:
    name = settings.name or f"node-{node_id}"
    data_path = Path(settings.data.path).expanduser()
    if not data_path.exists():
        raise UserError(
            f"site {name}: data path {data_path} does not exist; fix data.path in site.yaml "
            "or --node-config data-path"
        )
    raw = config_to_dict(config)
    raw["data"] = site_data_section(settings, raw["data"])
    site_config = config_from_dict(raw)
    state_dir = Path(settings.state_dir or Path.home() / ".privsynth" / name).expanduser()
    # Each Deployment Engine message runs in a fresh process: decode the images once.
    data = load_dataset(site_config, cache_dir=state_dir / "cache")
    if len(data) == 0:
        raise UserError(f"site {name}: {data_path} holds no images; check data.path")
    classes = declared_class_names(config)
    if classes and tuple(data.class_names) != tuple(classes):
        raise UserError(
            f"site {name}: its data has classes {list(data.class_names)} but the federation "
            f"trains on {list(classes)}; set data.options.class_names (or classes) in site.yaml"
        )
    train, _ = split_holdout(
        data, config.data.holdout_fraction, config.data.holdout_split, config.seed
    )
    unit = settings.privacy.unit or config.privacy.unit
    if unit == "patient" and not data.has_patient_ids:
        raise UserError(
            f"site {name}: privacy unit is 'patient' but {data_path} has no patient IDs; "
            "set privacy.unit: image or add patient IDs"
        )
    budget = _budget(settings, config)
    run_key = hashlib.sha256(str(run_dir).encode()).hexdigest()[:12]
    return Site(
        policy=SitePolicy(
            name=name,
            budget=budget,
            unit=unit,
            accountant=settings.privacy.accountant or config.privacy.accountant,
            share_discriminator=settings.outputs.discriminator,
            max_grad_norm=settings.privacy.max_grad_norm,
            min_noise_multiplier=settings.privacy.min_noise_multiplier,
        ),
        data=data.subset(np.asarray(train)),
        ledger_path=state_dir / "ledgers" / f"{settings.ledger_key}.json",
        run_state_dir=state_dir / "runs" / run_key,
    )


def is_deployed(node_config: dict) -> bool:
    """Simulated nodes get only Flower's partition keys; a SuperNode gets the site's keys."""
    return "partition-id" not in node_config or bool(
        set(node_config) - {"partition-id", "num-partitions"}
    )


def site_settings(node_config: dict) -> SiteSettings | None:
    """A deployed site's own settings; None for a simulated site."""
    return load_site_settings(node_config) if is_deployed(node_config) else None


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
