"""How a site finds its data, budget and state directory.

Simulation: the site is partition `partition-id` of the configured dataset, planned the same
way in every process. Deployment: the SuperNode's `--node-config` names the site's own data
(`data-path`), its state directory and, optionally, its own budget, which wins over the
server's config.
"""

from pathlib import Path

import numpy as np

from client.site import Site, SitePolicy
from common.config import (
    PRIVACY_UNITS,
    Config,
    ConfigValueError,
    SiteBudget,
    config_from_dict,
    config_to_dict,
)
from common.data.federation import load_dataset, plan_federation
from common.data.splits import split_holdout
from common.errors import UserError

NODE_CONFIG_KEYS = (
    "data-path",
    "site-name",
    "state-dir",
    "target-epsilon",
    "delta",
    "max-epsilon",
    "privacy-unit",
)


def simulated_site(config: Config, partition_id: int, run_dir: Path) -> Site:
    plan = plan_federation(config)
    name = f"site-{partition_id}"
    return Site(
        policy=SitePolicy(
            name=name,
            budget=config.site_budget(partition_id),
            unit=config.privacy.unit,
            max_grad_norm=config.privacy.max_grad_norm,
            accountant=config.privacy.accountant,
        ),
        data=plan.site_data(partition_id),
        state_dir=Path(run_dir) / "sites" / name,
    )


def _number(node_config: dict, key: str, default: float | None) -> float | None:
    if key not in node_config:
        return default
    value = node_config[key]
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise UserError(f"node config {key} must be a number, got {value!r}")
    try:
        return float(value)
    except ValueError:
        raise UserError(f"node config {key} must be a number, got {value!r}") from None


def deployed_site(config: Config, node_config: dict, node_id: int) -> Site:
    unknown = sorted(set(node_config) - set(NODE_CONFIG_KEYS) - {"partition-id", "num-partitions"})
    if unknown:
        raise UserError(
            f"unknown node config key {unknown[0]}; valid keys: {', '.join(NODE_CONFIG_KEYS)}"
        )
    name = str(node_config.get("site-name", f"node-{node_id}"))
    data_path = Path(str(node_config["data-path"])).expanduser()
    if not data_path.exists():
        raise UserError(f"site {name}: data-path {data_path} does not exist; fix --node-config")
    # The site's data replaces the server's path; format, labels and resolution are shared.
    raw = config_to_dict(config)
    source = raw["data"].get(config.data.source) or {}
    if "path" not in source:
        raise UserError(
            f"site {name}: data source {config.data.source!r} takes no data-path; "
            "use a file-based source (medmnist, folder, csv) in the server's config"
        )
    source["path"] = str(data_path)
    site_config = config_from_dict(raw)
    state_dir = Path(str(node_config.get("state-dir", Path.home() / ".privsynth" / name)))
    state_dir = state_dir.expanduser()
    # Each Deployment Engine message runs in a fresh process: decode the images once.
    data = load_dataset(site_config, cache_dir=state_dir / "cache")
    train, _ = split_holdout(
        data, config.data.holdout_fraction, config.data.holdout_split, config.seed
    )
    unit = str(node_config.get("privacy-unit", config.privacy.unit))
    if unit not in PRIVACY_UNITS:
        raise UserError(f"node config privacy-unit must be one of {', '.join(PRIVACY_UNITS)}")
    if unit == "patient" and not data.has_patient_ids:
        raise UserError(
            f"site {name}: privacy-unit is 'patient' but {data_path} has no patient IDs; "
            "use privacy-unit=image or add patient IDs"
        )
    defaults = config.site_budget(0)
    try:
        budget = SiteBudget(
            target_epsilon=_number(node_config, "target-epsilon", defaults.target_epsilon),
            delta=_number(node_config, "delta", defaults.delta),
            max_epsilon=_number(node_config, "max-epsilon", defaults.max_epsilon),
        )
    except ConfigValueError as error:
        raise UserError(f"site {name}: node config {error.key} {error.message}") from None
    return Site(
        policy=SitePolicy(
            name=name,
            budget=budget,
            unit=unit,
            max_grad_norm=config.privacy.max_grad_norm,
            accountant=config.privacy.accountant,
        ),
        data=data.subset(np.asarray(train)),
        state_dir=state_dir,
    )


def site_from_context(config: Config, node_config: dict, node_id: int, run_dir: Path) -> Site:
    if "data-path" in node_config:
        return deployed_site(config, node_config, node_id)
    if "partition-id" in node_config:
        num_partitions = int(node_config.get("num-partitions", config.federation.num_sites))
        if num_partitions != config.federation.num_sites:
            raise UserError(
                f"the simulation has {num_partitions} nodes but federation.num_sites is "
                f"{config.federation.num_sites}; make them equal"
            )
        return simulated_site(config, int(node_config["partition-id"]), run_dir)
    raise UserError(
        "this SuperNode has no data: start it with --node-config 'data-path=\"/path/to/data\"'"
    )
