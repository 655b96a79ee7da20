"""A hospital's own settings (`site.yaml` and/or `--node-config` keys), parsed once.

These are the site's rules, not the server's: where its data is, the most privacy it will
ever spend on that data, its clip and minimum noise, and which outputs may leave. Values left
out take the federation's (the server's config); a hospital should set at least its budget.
"""

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from common.config import ACCOUNTANTS, PRIVACY_UNITS, ConfigValueError, build_dataclass
from common.errors import UserError

# --node-config key -> dotted site.yaml key.
NODE_CONFIG_KEYS = {
    "site-name": "name",
    "state-dir": "state_dir",
    "data-path": "data.path",
    "data-format": "data.format",
    "target-epsilon": "privacy.target_epsilon",
    "max-epsilon": "privacy.max_epsilon",
    "delta": "privacy.delta",
    "privacy-unit": "privacy.unit",
    "max-grad-norm": "privacy.max_grad_norm",
    "min-noise-multiplier": "privacy.min_noise_multiplier",
    "share-discriminator": "outputs.discriminator",
}
SITE_CONFIG_KEY = "site-config"
FILE_FORMATS = ("medmnist", "folder", "csv")


def _positive(value: float | None, key: str) -> None:
    if value is not None and not value > 0:
        raise ConfigValueError(key, f"must be > 0; got {value}")


@dataclass(frozen=True)
class SiteData:
    """path: the site's images (file or folder). format: its data source; empty = the
    federation's. options: that source's options other than the path (e.g. a CSV's column
    names); empty = the federation's. ledger_key: names the privacy ledger; by default derived
    from the path, so moving the data needs ledger_key set to keep its history."""

    path: str
    format: str = ""
    options: Any = None
    ledger_key: str = ""

    def __post_init__(self) -> None:
        if self.options is not None and not isinstance(self.options, dict):
            raise ConfigValueError("options", f"must be a mapping of keys; got {self.options!r}")
        if self.format and self.format not in FILE_FORMATS:
            raise ConfigValueError(
                "format", f"must be one of {', '.join(FILE_FORMATS)}; got {self.format!r}"
            )
        if self.ledger_key and not re.fullmatch(r"[A-Za-z0-9._-]+", self.ledger_key):
            raise ConfigValueError("ledger_key", "may hold only letters, digits, '.', '_', '-'")


@dataclass(frozen=True)
class SitePrivacy:
    """target_epsilon: what the noise is calibrated for when the ledger is created.
    max_epsilon: the most this site ever spends on this dataset, over all runs.
    max_grad_norm: the only clip the site trains with; a request asking another is refused.
    min_noise_multiplier: a request or calibration below it is refused."""

    target_epsilon: float | None = None
    max_epsilon: float | None = None
    delta: float | None = None
    unit: str | None = None
    max_grad_norm: float | None = None
    min_noise_multiplier: float = 0.0
    accountant: str | None = None

    def __post_init__(self) -> None:
        _positive(self.target_epsilon, "target_epsilon")
        _positive(self.max_epsilon, "max_epsilon")
        _positive(self.max_grad_norm, "max_grad_norm")
        if self.delta is not None and not 0 < self.delta < 1:
            raise ConfigValueError("delta", f"must be in (0, 1); got {self.delta}")
        if self.min_noise_multiplier < 0:
            raise ConfigValueError("min_noise_multiplier", "must be >= 0")
        if self.unit is not None and self.unit not in PRIVACY_UNITS:
            raise ConfigValueError("unit", f"must be one of {', '.join(PRIVACY_UNITS)}")
        if self.accountant is not None and self.accountant not in ACCOUNTANTS:
            raise ConfigValueError("accountant", f"must be one of {', '.join(ACCOUNTANTS)}")
        if None not in (self.target_epsilon, self.max_epsilon) and (
            self.max_epsilon < self.target_epsilon
        ):
            raise ConfigValueError("max_epsilon", "must be >= target_epsilon")


@dataclass(frozen=True)
class SiteOutputs:
    """What may leave the site besides the generator's weights."""

    discriminator: bool = False


@dataclass(frozen=True)
class SiteSettings:
    data: SiteData
    name: str = ""
    state_dir: str = ""
    privacy: SitePrivacy = field(default_factory=SitePrivacy)
    outputs: SiteOutputs = field(default_factory=SiteOutputs)
    # Larger requests are refused unread: the models here are a few MB.
    max_request_mb: float = 64.0

    def __post_init__(self) -> None:
        _positive(self.max_request_mb, "max_request_mb")

    @property
    def ledger_key(self) -> str:
        if self.data.ledger_key:
            return self.data.ledger_key
        resolved = str(Path(self.data.path).expanduser().resolve())
        stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(resolved).name) or "data"
        return f"{stem}-{hashlib.sha256(resolved.encode()).hexdigest()[:10]}"


def _set(raw: dict, dotted: str, value: Any) -> None:
    *sections, last = dotted.split(".")
    node = raw
    for section in sections:
        node = node.setdefault(section, {})
    node[last] = value


def _node_value(key: str, value: Any) -> Any:
    """Node config values arrive as strings or numbers; parse strings as YAML scalars."""
    if isinstance(value, str) and key not in ("site-name", "state-dir", "data-path"):
        try:
            return yaml.safe_load(value)
        except yaml.YAMLError:
            return value
    return value


def load_site_settings(node_config: dict) -> SiteSettings:
    """The site's settings from `site-config` (a site.yaml path) and other node config keys,
    which win over the file's values."""
    known = {SITE_CONFIG_KEY, *NODE_CONFIG_KEYS, "partition-id", "num-partitions"}
    unknown = sorted(set(node_config) - known)
    if unknown:
        raise UserError(
            f"unknown node config key {unknown[0]}; valid keys: "
            f"{', '.join([SITE_CONFIG_KEY, *NODE_CONFIG_KEYS])}"
        )
    raw: dict = {}
    source = "--node-config"
    if SITE_CONFIG_KEY in node_config:
        path = Path(str(node_config[SITE_CONFIG_KEY])).expanduser()
        source = str(path)
        if not path.is_file():
            raise UserError(f"site-config {path} does not exist; fix --node-config site-config=")
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as error:
            raise UserError(f"{path}: not valid YAML ({error})") from None
        if not isinstance(raw, dict):
            raise UserError(f"{path}: the top level must be a mapping of keys")
    for key, dotted in NODE_CONFIG_KEYS.items():
        if key in node_config:
            _set(raw, dotted, _node_value(key, node_config[key]))
    if "path" not in (raw.get("data") or {}):
        raise UserError(
            f"{source}: the site's data path is not set; set data.path in site.yaml or "
            "--node-config 'data-path=\"/path/to/data\"'"
        )
    try:
        return build_dataclass(SiteSettings, raw, "")
    except UserError as error:
        raise UserError(f"{source}: {error}") from None


def site_data_section(settings: SiteSettings, federation_data: dict) -> dict:
    """The federation's `data` section with the site's own source, path and options.

    Resolution, holdout and label space stay the federation's: every site must produce images
    and labels the shared generator can be trained on.
    """
    section = dict(federation_data)
    fed_source = section["source"]
    source = settings.data.format or fed_source
    if source not in FILE_FORMATS:
        raise UserError(
            f"site {settings.name or '?'}: the federation's data source is {fed_source!r}, which "
            f"reads no site files; set data.format in site.yaml ({', '.join(FILE_FORMATS)})"
        )
    federation_options = section.pop(fed_source, None) or {}
    options = dict(federation_options) if source == fed_source else {}
    options.update(settings.data.options or {})
    options["path"] = str(Path(settings.data.path).expanduser())
    section["source"] = source
    section[source] = options
    return section
