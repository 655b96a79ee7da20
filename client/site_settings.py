"""A hospital's own settings (`site.yaml` and/or `--node-config` keys), parsed once.

These are the site's rules, not the server's: where its data is and how to read it (format,
label column, classes, patient key), its privacy settings (target and maximum epsilon, delta,
unit, accountant), its clip and minimum noise, which outputs may leave, and the device it
computes on (`device`: auto, cpu or cuda; default auto). None of them is
taken from the server's config: a server could otherwise read data out of error messages or
turn patient-level DP into image-level DP. A site whose settings leave one out refuses every
request and tells its operator which key to set.
"""

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from common.config import (
    DEVICES,
    PRIVACY_UNITS,
    ConfigValueError,
    build_dataclass,
    get_dotted,
    set_dotted,
)
from common.errors import UserError
from common.privacy.accounting import ACCOUNTANTS

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
    "accountant": "privacy.accountant",
    "max-grad-norm": "privacy.max_grad_norm",
    "min-noise-multiplier": "privacy.min_noise_multiplier",
    "share-discriminator": "outputs.discriminator",
    "device": "device",
    "prior": "prior",
}
SITE_CONFIG_KEY = "site-config"
FILE_FORMATS = ("medmnist", "folder", "csv")
# The option that lists a format's classes, in the order the federation's labels use.
CLASS_OPTION = {"medmnist": "class_names", "folder": "class_names", "csv": "classes"}
# The only data setting a deployed site takes from the server (client/server_settings.py).
FEDERATION_DATA_KEYS = ("resolution",)
# What a deployed site must set itself; target_epsilon .inf (no privacy) only if written.
REQUIRED_KEYS = (
    "state_dir",
    "data.format",
    "privacy.target_epsilon",
    "privacy.delta",
    "privacy.unit",
    "privacy.accountant",
)


def _positive(value: float | None, key: str) -> None:
    if value is not None and not value > 0:
        raise ConfigValueError(key, f"must be > 0; got {value}")


@dataclass(frozen=True)
class SiteData:
    """path: the site's images (file or folder). format: its data source. options: that
    source's options other than the path (e.g. a CSV's column names, and its classes).
    ledger_key: names the privacy ledger; by default derived from the path, so moving the
    data needs ledger_key set to keep its history.
    split: train only on the images of this predefined split of the file (e.g. "train" of a
    MedMNIST file); empty: on all of them."""

    path: str
    format: str = ""
    options: Any = None
    ledger_key: str = ""
    split: str = ""

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
    # The hardware is the site's own: the server's runtime.device does not choose it.
    device: str = "auto"
    # The site's own copy of a public prior (a folder under the project's priors/, or a
    # path): what its models and embeddings start from. The server's model.prior names a
    # file on the server's machine and is never read here.
    prior: str = ""

    def __post_init__(self) -> None:
        _positive(self.max_request_mb, "max_request_mb")
        if self.device not in DEVICES:
            raise ConfigValueError(
                "device", f"must be one of {', '.join(DEVICES)}; got {self.device!r}"
            )

    @property
    def class_names(self) -> tuple[str, ...]:
        """The classes the site declares for its data, in the federation's order."""
        return tuple((self.data.options or {}).get(CLASS_OPTION[self.data.format], ()))

    @property
    def ledger_key(self) -> str:
        if self.data.ledger_key:
            return self.data.ledger_key
        resolved = str(Path(self.data.path).expanduser().resolve())
        stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(resolved).name) or "data"
        return f"{stem}-{hashlib.sha256(resolved.encode()).hexdigest()[:10]}"


def _node_value(key: str, value: Any) -> Any:
    """Node config values arrive as strings or numbers; parse strings as YAML scalars."""
    if isinstance(value, str) and key not in ("site-name", "state-dir", "data-path", "prior"):
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
            set_dotted(raw, dotted, _node_value(key, node_config[key]))
    if not raw:
        raise UserError(
            "this SuperNode has no site settings, so it refuses every request: start it with "
            "--node-config 'site-config=\"/path/to/site.yaml\"' (docs/deployment.md: A "
            "hospital's site.yaml); a simulation's sites are started by `privsynth run`"
        )
    if "path" not in (raw.get("data") or {}):
        raise UserError(
            f"{source}: the site's data path is not set; set data.path in site.yaml or "
            "--node-config 'data-path=\"/path/to/data\"'"
        )
    try:
        settings = build_dataclass(SiteSettings, raw, "")
    except UserError as error:
        raise UserError(f"{source}: {error}") from None
    missing = [key for key in REQUIRED_KEYS if get_dotted(raw, key) in (None, "")]
    if settings.data.format and not settings.class_names:
        missing.append(f"data.options.{CLASS_OPTION[settings.data.format]}")
    if missing:
        raise UserError(
            f"{source}: this site's own settings must set {', '.join(missing)}; it takes none "
            "of them from the server; set them in site.yaml (docs/deployment.md: A hospital's "
            "site.yaml)"
        )
    return settings


def site_data_section(settings: SiteSettings, federation_data: dict) -> dict:
    """The federation's `data` section with the site's own source and options.

    Resolution and holdout stay the federation's: every site must produce images the shared
    generator can be trained on. How the data is read is the site's alone.
    """
    section = {key: federation_data[key] for key in FEDERATION_DATA_KEYS}
    section["source"] = settings.data.format
    section[settings.data.format] = {
        **(settings.data.options or {}),
        "path": str(Path(settings.data.path).expanduser()),
    }
    return section
