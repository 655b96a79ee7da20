"""Run configuration: YAML presets parsed once into frozen dataclasses.

Unknown keys, wrong types and out-of-range values raise one UserError naming the key.
Overrides use dotted keys (`--set privacy.target_epsilon=3`), parsed as YAML scalars.
"""

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from common.data import SOURCES
from common.data.sources import DicomOptions
from common.data.splits import PARTITION_SCHEMES
from common.errors import UserError
from common.privacy.accounting import ACCOUNTANTS

RESOLUTIONS = (28, 32, 64, 128)
UPSAMPLING = ("transposed", "nearest", "bilinear")  # the generator's 2x upsampling layers
GENERATOR_LAYERS = ("all", "input")  # what the mean-embedding fit moves (MeanEmbeddingConfig)
# The model architectures common.models registers (a test keeps the two lists equal).
ARCHITECTURES = ("dcgan", "resnet")
PRIVACY_UNITS = ("image", "patient")
DEVICES = ("auto", "cpu", "cuda")  # auto: the GPU when there is one
# What a site releases: DP-SGD discriminator rounds, or one noised mean embedding.
METHODS = ("dpgan", "mean_embedding", "mean_embedding_dpgan")
# The methods whose server fit can make a mixture of generators (model.generator_components).
MIXTURE_METHODS = ("mean_embedding",)
PRESET_DIR = Path(__file__).resolve().parent.parent / "configs"


class ConfigValueError(ValueError):
    """Raised in __post_init__ with the field name; the parser adds the key's path."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


def _require(condition: bool, key: str, message: str) -> None:
    if not condition:
        raise ConfigValueError(key, message)


def _choice(value: str, key: str, choices: tuple[str, ...]) -> None:
    _require(value in choices, key, f"must be one of {', '.join(choices)}; got {value!r}")


@dataclass(frozen=True)
class DataConfig:
    """Which images, at which resolution, and how the holdout is set aside."""

    source: str = "phantom"
    resolution: int = 32
    holdout_fraction: float = 0.15
    holdout_split: str = ""
    # The share of each site's training images (whole patients) that no site trains on: real
    # non-members of the training population itself, the membership attacks' negative control
    # (a holdout of other patients may differ as a population). 0: none.
    untrained_fraction: float = 0.1
    dicom: DicomOptions = field(default_factory=DicomOptions)
    # Parsed from the YAML key named after the source, e.g. `data.phantom`.
    options: Any = None

    def __post_init__(self) -> None:
        _require(
            self.resolution in RESOLUTIONS,
            "resolution",
            f"must be one of {', '.join(map(str, RESOLUTIONS))}; got {self.resolution}",
        )
        _require(0 <= self.holdout_fraction < 1, "holdout_fraction", "must be in [0, 1)")
        _require(0 <= self.untrained_fraction < 1, "untrained_fraction", "must be in [0, 1)")
        if self.options is None:
            object.__setattr__(self, "options", SOURCES.get(self.source).options())


@dataclass(frozen=True)
class ModelConfig:
    """Generator and discriminator architecture and sizes."""

    # dcgan: strided convolutions, small and cheap; resnet: residual blocks (common/models).
    architecture: str = "dcgan"
    latent_dim: int = 64
    generator_width: int = 32
    discriminator_width: int = 16
    # Fake conditions may not depend on private labels: multi-label conditions are drawn
    # with each finding present independently at this public rate.
    multilabel_prior: float = 0.3
    generator_upsampling: str = "transposed"  # or nearest/bilinear (+ 3x3 conv): no checkerboard
    # > 1: an equal mixture of that many generators, each fitted on its own to the released
    # mean embeddings (training.method: mean_embedding only).
    generator_components: int = 1
    # A public prior to start from (common/prior): a folder under the repository's priors/, or
    # an absolute path; "" starts from random weights.
    prior: str = ""

    def __post_init__(self) -> None:
        for key in ("latent_dim", "generator_width", "discriminator_width", "generator_components"):
            _require(getattr(self, key) >= 1, key, "must be >= 1")
        _require(0 < self.multilabel_prior < 1, "multilabel_prior", "must be in (0, 1)")
        _choice(self.architecture, "architecture", ARCHITECTURES)
        _require(
            self.generator_upsampling in UPSAMPLING,
            "generator_upsampling",
            f"must be one of {', '.join(UPSAMPLING)}; got {self.generator_upsampling!r}",
        )


@dataclass(frozen=True)
class TrainingConfig:
    """Local optimisation at a site.

    method: dpgan trains a DP-SGD discriminator at each site for federation.rounds rounds;
    mean_embedding has each site release its per-class mean random-feature embedding once,
    through the Gaussian mechanism, and the server fits the generator to it (section
    `mean_embedding`); mean_embedding_dpgan does the second with `release_share` of each
    site's epsilon, then the first from the fitted generator with the rest.
    """

    method: str = "dpgan"
    batch_size: int = 64
    discriminator_steps_per_generator_step: int = 4
    # 0: the fixed schedule above. Otherwise a generator step follows every D step whose
    # accuracy on its generated images is at least this (Bie et al. 2023 use 0.6).
    generator_step_threshold: float = 0.0
    discriminator_lr: float = 4e-4
    generator_lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    mode_seeking_weight: float = 0.0
    # Shift and cut out D's real and generated inputs alike (DiffAugment); DP-safe, per row.
    augmentation: bool = False
    # mean_embedding_dpgan: the share of each site's epsilon its release spends.
    release_share: float = 0.5

    def __post_init__(self) -> None:
        _require(self.batch_size >= 1, "batch_size", "must be >= 1")
        _require(
            self.discriminator_steps_per_generator_step >= 1,
            "discriminator_steps_per_generator_step",
            "must be >= 1",
        )
        _require(
            0 <= self.generator_step_threshold <= 1, "generator_step_threshold", "must be in [0, 1]"
        )
        for key in ("discriminator_lr", "generator_lr"):
            _require(getattr(self, key) > 0, key, "must be > 0")
        for key in ("beta1", "beta2"):
            _require(0 <= getattr(self, key) < 1, key, "must be in [0, 1)")
        _require(self.mode_seeking_weight >= 0, "mode_seeking_weight", "must be >= 0")
        _require(0 < self.release_share < 1, "release_share", "must be in (0, 1)")
        _choice(self.method, "method", METHODS)


@dataclass(frozen=True)
class MeanEmbeddingConfig:
    """DP-MERF (Harder et al. 2021): random Fourier features of a Gaussian kernel on pixels.

    frequencies: random frequencies; each gives a cosine and a sine feature.
    bandwidth: the kernel's length scale in units of sqrt(pixel count) of the (pooled) image,
        for pixels in [-1, 1]; a list gives a mixture of Gaussian kernels, the frequencies
        split evenly between them.
    pooling: each kernel sees the image average-pooled over s x s pixels (1: every pixel);
        one value for all kernels, or a list with one per bandwidth. s must divide the
        resolution.
    detail: a kernel with detail s sees only the image's fine detail, the image minus its
        s x s average-pooled copy (0: the whole image); one value for all kernels, or a list
        with one per bandwidth. s must divide the resolution, and the kernel's pooling be 1.
    gradient: a kernel with gradient 1 sees only the image's finite differences between
        neighbouring pixels (its edges and texture; 0: not); one value for all kernels, or a
        list with one per bandwidth. The kernel's pooling must be 1 and its detail 0.
    count_share: the share b^2 of each record's unit norm, and so of the release's
        sensitivity, that goes to the per-group counts (the rest to the feature sums); null:
        the split that minimises the mean embeddings' squared error, 1 / (sqrt(dim) + 1). A
        count's error scales its group's whole mean embedding, which a generator can follow
        (by making its samples more or less alike), so a short fit may do better with more.
        Any share keeps the sensitivity at 1, so the noise and epsilon do not depend on it.
    prior_features: the share w of each image's unit-norm embedding on the public prior's
        features (model.prior; its discriminator's layers before the score, scaled to norm
        1), as DP-MEPF (Harder et al. 2023) embeds with a public network: the embedding is
        [sqrt(1 - w) random features, sqrt(w) prior features]. 0: random features only.
    generator_steps, batch_per_class, generator_lr: the server's fit of the generator.
    generator_ema: the fit keeps an exponential moving average of the generator's weights,
        updated after every step with this decay, and returns it (0: the last weights).
    generator_layers: which of the generator's weights the fit moves. "all"; or "input", only
        the layers that map the latent and the condition to the first feature map, so that
        every image is still one the prior's upsampling layers draw: the fit chooses which
        of the prior's films to draw, and cannot wash out their texture.
    """

    frequencies: int = 1000
    bandwidth: float | tuple[float, ...] = 0.25
    pooling: int | tuple[int, ...] = 1
    detail: int | tuple[int, ...] = 0
    gradient: int | tuple[int, ...] = 0
    count_share: float | None = None
    prior_features: float = 0.0
    generator_steps: int = 600
    batch_per_class: int = 200
    generator_lr: float = 1e-3
    generator_ema: float = 0.0
    generator_layers: str = "all"

    def __post_init__(self) -> None:
        for key in ("frequencies", "generator_steps", "batch_per_class"):
            _require(getattr(self, key) >= 1, key, "must be >= 1")
        _require(self.generator_lr > 0, "generator_lr", "must be > 0")
        _require(0 <= self.generator_ema < 1, "generator_ema", "must be in [0, 1)")
        _require(0 <= self.prior_features <= 1, "prior_features", "must be in [0, 1]")
        _choice(self.generator_layers, "generator_layers", GENERATOR_LAYERS)
        _require(
            self.count_share is None or 0 < self.count_share < 1,
            "count_share",
            "must be between 0 and 1 (exclusive), or null for the least-squares split",
        )
        _require(
            len(self.bandwidths) >= 1 and all(b > 0 for b in self.bandwidths),
            "bandwidth",
            "must be > 0, or a non-empty list of values > 0",
        )
        _require(
            self.frequencies >= len(self.bandwidths),
            "frequencies",
            f"must be >= the number of bandwidths ({len(self.bandwidths)})",
        )
        for key in ("pooling", "detail", "gradient"):
            value = getattr(self, key)
            if isinstance(value, tuple):
                _require(
                    len(value) == len(self.bandwidths),
                    key,
                    f"lists {len(value)} values for {len(self.bandwidths)} bandwidths; "
                    "give one per bandwidth, or one number for all",
                )
        _require(all(s >= 1 for s in self.poolings), "pooling", "must be >= 1")
        _require(
            all(s == 0 or s >= 2 for s in self.details),
            "detail",
            "must be 0 (the whole image) or a pooling factor >= 2",
        )
        _require(
            all(s == 1 for s, d in zip(self.poolings, self.details) if d),
            "detail",
            "a kernel with detail > 0 sees the full-resolution image; set its pooling to 1",
        )
        _require(all(g in (0, 1) for g in self.gradients), "gradient", "must be 0 or 1")
        _require(
            all(
                s == 1 and d == 0
                for s, d, g in zip(self.poolings, self.details, self.gradients)
                if g
            ),
            "gradient",
            "a kernel with gradient 1 sees the full-resolution image; set its pooling to 1 "
            "and its detail to 0",
        )

    @property
    def bandwidths(self) -> tuple[float, ...]:
        return self.bandwidth if isinstance(self.bandwidth, tuple) else (self.bandwidth,)

    def _per_bandwidth(self, value: int | tuple[int, ...]) -> tuple[int, ...]:
        return value if isinstance(value, tuple) else (value,) * len(self.bandwidths)

    @property
    def poolings(self) -> tuple[int, ...]:
        """One pooling factor per bandwidth."""
        return self._per_bandwidth(self.pooling)

    @property
    def details(self) -> tuple[int, ...]:
        """One detail factor per bandwidth (0: the whole image)."""
        return self._per_bandwidth(self.detail)

    @property
    def gradients(self) -> tuple[int, ...]:
        """One gradient flag per bandwidth (1: the kernel sees the finite differences)."""
        return self._per_bandwidth(self.gradient)


def _check_budget(target_epsilon: float, delta: float, max_epsilon: float | None) -> None:
    _require(target_epsilon > 0, "target_epsilon", "must be > 0 (use .inf for non-private)")
    _require(0 < delta < 1, "delta", f"must be in (0, 1); got {delta}")
    if max_epsilon is not None:
        _require(
            max_epsilon >= target_epsilon,
            "max_epsilon",
            f"must be >= target_epsilon ({target_epsilon})",
        )


@dataclass(frozen=True)
class SiteBudget:
    """A per-site override of the privacy budget (`privacy.sites[i]`)."""

    target_epsilon: float
    delta: float = 1e-5
    max_epsilon: float | None = None

    def __post_init__(self) -> None:
        _check_budget(self.target_epsilon, self.delta, self.max_epsilon)


@dataclass(frozen=True)
class PrivacyConfig:
    """DP-SGD settings; target_epsilon .inf trains without privacy (baseline).

    noise_multiplier: a fixed sigma for every site instead of one calibrated from each site's
    budget; a site refuses it if it is below its own policy's minimum.
    """

    target_epsilon: float = 10.0
    delta: float = 1e-5
    max_epsilon: float | None = None
    noise_multiplier: float | None = None
    max_grad_norm: float = 1.0
    unit: str = "image"
    accountant: str = "rdp"
    sites: tuple[SiteBudget, ...] = ()

    def __post_init__(self) -> None:
        _check_budget(self.target_epsilon, self.delta, self.max_epsilon)
        if self.noise_multiplier is not None:
            _require(self.noise_multiplier > 0, "noise_multiplier", "must be > 0")
        _require(self.max_grad_norm > 0, "max_grad_norm", "must be > 0")
        _choice(self.unit, "unit", PRIVACY_UNITS)
        _choice(self.accountant, "accountant", ACCOUNTANTS)


@dataclass(frozen=True)
class FederationConfig:
    """Sites, rounds and what travels between sites and server."""

    num_sites: int = 3
    rounds: int = 20
    local_steps: int = 50
    partition: str = "iid"
    partition_alpha: float = 0.5
    share_discriminator: bool = True
    min_sites: int = 1
    round_timeout_s: float = 1800.0
    # Below min_sites replies, ask the missing sites again this many times before stopping.
    round_retries: int = 2
    retry_wait_s: float = 10.0

    def __post_init__(self) -> None:
        for key in ("num_sites", "rounds", "local_steps", "min_sites"):
            _require(getattr(self, key) >= 1, key, "must be >= 1")
        _choice(self.partition, "partition", PARTITION_SCHEMES)
        _require(self.partition_alpha > 0, "partition_alpha", "must be > 0")
        _require(
            self.min_sites <= self.num_sites,
            "min_sites",
            f"must be <= num_sites ({self.num_sites})",
        )
        _require(self.round_timeout_s > 0, "round_timeout_s", "must be > 0")
        _require(self.round_retries >= 0, "round_retries", "must be >= 0")
        _require(self.retry_wait_s >= 0, "retry_wait_s", "must be >= 0")


@dataclass(frozen=True)
class OutputConfig:
    """Where the run folder goes and what the synthetic export holds."""

    dir: str = "runs"
    samples_per_class: int = 200
    grid_columns: int = 10
    generator_ema: float = 0.9

    def __post_init__(self) -> None:
        _require(self.samples_per_class >= 1, "samples_per_class", "must be >= 1")
        _require(self.grid_columns >= 1, "grid_columns", "must be >= 1")
        _require(0 <= self.generator_ema < 1, "generator_ema", "must be in [0, 1)")


@dataclass(frozen=True)
class RuntimeConfig:
    """Simulation resources on one machine."""

    threads_per_site: int = 1
    # 0 = one site per core: sites beyond the cores wait for a free one.
    cpus_per_site: float = 0.0
    device: str = "auto"
    # Sites that train at once on one GPU (each holds its own models and data there).
    sites_per_gpu: int = 4

    def __post_init__(self) -> None:
        _require(self.threads_per_site >= 1, "threads_per_site", "must be >= 1")
        _require(self.cpus_per_site >= 0, "cpus_per_site", "must be >= 0 (0 = automatic)")
        _choice(self.device, "device", DEVICES)
        _require(self.sites_per_gpu >= 1, "sites_per_gpu", "must be >= 1")


@dataclass(frozen=True)
class Config:
    name: str = "quickstart"
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    mean_embedding: MeanEmbeddingConfig = field(default_factory=MeanEmbeddingConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    federation: FederationConfig = field(default_factory=FederationConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

    def __post_init__(self) -> None:
        resolution = self.data.resolution
        settings = self.mean_embedding
        for key, factors in (("pooling", settings.poolings), ("detail", settings.details)):
            for factor in factors:
                _require(
                    factor == 0 or resolution % factor == 0,
                    f"mean_embedding.{key}",
                    f"{factor} does not divide data.resolution={resolution}; use a divisor of it",
                )
        _require(
            self.model.generator_components == 1 or self.training.method in MIXTURE_METHODS,
            "model.generator_components",
            f"is {self.model.generator_components}, but only training.method=mean_embedding "
            "fits a mixture of generators; set it to 1 for the DP-GAN",
        )
        _require(
            not settings.prior_features or self.model.prior,
            "mean_embedding.prior_features",
            f"is {settings.prior_features}, but model.prior is not set; name a prior, or set "
            "it to 0",
        )
        _require(
            settings.generator_layers == "all" or self.model.prior,
            "mean_embedding.generator_layers",
            f"is {settings.generator_layers!r}, which keeps the prior's upsampling layers, but "
            "model.prior is not set; name a prior, or set it to 'all'",
        )
        if self.privacy.sites:
            _require(
                len(self.privacy.sites) == self.federation.num_sites,
                "privacy.sites",
                f"lists {len(self.privacy.sites)} budgets for "
                f"federation.num_sites={self.federation.num_sites}; give one per site or none",
            )
        # A patient whose images sit at k simulated sites would get k times the epsilon.
        _require(
            self.privacy.unit != "patient" or self.federation.partition == "by-patient",
            "privacy.unit",
            f"is 'patient' but federation.partition is {self.federation.partition!r}, which can "
            "split one patient's images across sites; set federation.partition: by-patient",
        )
        if self.privacy.unit == "patient":
            spec = SOURCES.get(self.data.source)
            _require(
                spec.has_patient_ids(self.data.options),
                "privacy.unit",
                f"is 'patient' but data source {self.data.source!r} as configured has no "
                "patient IDs; use privacy.unit=image or give the source a patient column "
                "or pattern",
            )

    def site_budget(self, site: int) -> SiteBudget:
        """The budget of simulated site `site` (0-based)."""
        if self.privacy.sites:
            return self.privacy.sites[site]
        return SiteBudget(self.privacy.target_epsilon, self.privacy.delta, self.privacy.max_epsilon)

    @property
    def private(self) -> bool:
        return any(
            math.isfinite(self.site_budget(i).target_epsilon)
            for i in range(self.federation.num_sites)
        )


# ---- parsing -------------------------------------------------------------------------


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp).replace("typing.", ""))


def _coerce(tp: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(option, value, key)
            except UserError as error:
                errors.append(error)
        raise errors[0]
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise UserError(f"{key} must be a list, got {value!r}")
        item_type = typing.get_args(tp)[0]
        return tuple(_coerce(item_type, item, f"{key}[{i}]") for i, item in enumerate(value))
    if dataclasses.is_dataclass(tp):
        return build_dataclass(tp, value, key)
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and value.lower() in ("inf", ".inf", "infinity"):
            return math.inf
    elif tp is str:
        if isinstance(value, str):
            return value
    raise UserError(f"{key} must be of type {_type_name(tp)}, got {value!r}")


def build_dataclass(cls: type, raw: Any, path: str) -> Any:
    """An instance of frozen dataclass `cls` from a YAML mapping; `path` prefixes error keys."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise UserError(f"{path or 'config'} must be a mapping of keys, got {raw!r}")
    if cls is DataConfig:
        return _build_data(raw, path)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    prefix = f"{path}." if path else ""
    for key in raw:
        if key not in fields:
            raise UserError(
                f"unknown config key {prefix}{key}; valid keys here: {', '.join(sorted(fields))}"
            )
    missing = [
        name
        for name, f in fields.items()
        if name not in raw
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise UserError(f"config key {prefix}{missing[0]} is required")
    kwargs = {key: _coerce(hints[key], value, f"{prefix}{key}") for key, value in raw.items()}
    try:
        return cls(**kwargs)
    except ConfigValueError as error:
        key = error.key if "." in error.key else f"{prefix}{error.key}"
        raise UserError(f"{key} {error.message}") from None


def _build_data(raw: dict, path: str) -> DataConfig:
    raw = dict(raw)
    source = raw.get("source", DataConfig.source)
    if not isinstance(source, str):
        raise UserError(f"{path}.source must be a string, got {source!r}")
    try:
        spec = SOURCES.get(source)
    except UserError as error:
        raise UserError(f"{path}.source: {error}") from None
    for other in SOURCES.names():
        if other != source and other in raw:
            raise UserError(
                f"{path}.{other} is set but {path}.source is {source!r}; "
                f"remove {path}.{other} or set {path}.source={other}"
            )
    if "options" in raw:
        raise UserError(
            f"unknown config key {path}.options; source options go under {path}.{source}"
        )
    options = build_dataclass(spec.options, raw.pop(source, None), f"{path}.{source}")
    hints = typing.get_type_hints(DataConfig)
    valid = sorted(set(hints) - {"options"} | {source})
    for key in raw:
        if key not in hints:
            raise UserError(f"unknown config key {path}.{key}; valid keys here: {', '.join(valid)}")
    kwargs = {key: _coerce(hints[key], value, f"{path}.{key}") for key, value in raw.items()}
    try:
        return DataConfig(options=options, **kwargs)
    except ConfigValueError as error:
        raise UserError(f"{path}.{error.key} {error.message}") from None


def set_dotted(raw: dict, dotted: str, value: Any) -> None:
    """raw["a"]["b"] = value for "a.b", creating sections; a value in the way is an error."""
    parts = dotted.split(".")
    node = raw
    for depth, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise UserError(f"--set {dotted}: {'.'.join(parts[: depth + 1])} is not a section")
        node = child
    node[parts[-1]] = value


def get_dotted(raw: dict, dotted: str) -> Any:
    """raw["a"]["b"] for "a.b", or None where a section is missing."""
    node: Any = raw
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def parse_override(text: str) -> tuple[str, Any]:
    """`a.b=value` -> ("a.b", value parsed as a YAML scalar or list)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise UserError(f"--set expects key=value (e.g. privacy.target_epsilon=3), got {text!r}")
    try:
        return key.strip(), yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError:
        raise UserError(f"--set {key}: cannot parse value {value!r}") from None


def config_from_dict(raw: dict | None, overrides: list[str] = ()) -> Config:
    raw = dict(raw or {})
    for text in overrides:
        key, value = parse_override(text)
        set_dotted(raw, key, value)
    return build_dataclass(Config, raw, "")


def resolve_config_path(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.is_file():
        return path
    preset = PRESET_DIR / f"{name_or_path}.yaml"
    if preset.is_file():
        return preset
    presets = sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))
    raise UserError(
        f"config file {name_or_path!r} not found; give a YAML path or a preset: "
        f"{', '.join(presets)}"
    )


def load_config(name_or_path: str, overrides: list[str] = ()) -> Config:
    path = resolve_config_path(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise UserError(f"{path}: not valid YAML ({error})") from None
    if raw is not None and not isinstance(raw, dict):
        raise UserError(f"{path}: the top level must be a mapping of sections")
    return config_from_dict(raw, overrides)


def config_to_dict(config: Config) -> dict:
    """The resolved config in the YAML layout it was parsed from."""
    raw = dataclasses.asdict(config)
    data = raw["data"]
    options = data.pop("options")
    data[config.data.source] = options
    return _plain(raw)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def config_to_yaml(config: Config) -> str:
    return yaml.safe_dump(config_to_dict(config), sort_keys=False)
