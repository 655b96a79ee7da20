"""The one owner of a public prior's file format: a folder holding `weights.pt` (the
generator's and the discriminator's state dicts) and `provenance.json` (where the weights
come from: the public file's sha256 and licence, the resolution, the model settings, the
training settings, the command and the commit).

A prior learns from public images only, so it costs no epsilon. Most public films carry no
labels of the sites' classes: such a prior is trained with every condition zero, and the
weights that read the condition (whose shapes depend on the number of classes) are not
stored. A model that starts from it gets them at zero, so every class starts as the public
films and the sites' training learns what tells the classes apart. A labelled prior (public
films labelled with the sites' classes) stores them with its class names, and a model starts
from it only when its data has exactly those classes.

Its content hash (sha256 over both files) names the prior in what a run records.
"""

import hashlib
import json
import pickle
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from common.atomic import torch_save, write_text
from common.config import Config, ModelConfig
from common.data.federation import declared_class_names
from common.errors import UserError
from common.models import build_models, components_of

# model.prior names a folder here unless it is an absolute path.
PRIOR_DIR = Path(__file__).resolve().parents[2] / "priors"
WEIGHTS = "weights.pt"
PROVENANCE = "provenance.json"
FORMAT = 1
CHANNELS = 1  # the models make and judge grayscale images
# The model settings a prior's weights depend on, besides data.resolution.
MODEL_KEYS = (
    "architecture",
    "latent_dim",
    "generator_width",
    "discriminator_width",
    "generator_upsampling",
)
PARTS = ("generator", "discriminator")


@dataclass(frozen=True, eq=False)
class Prior:
    folder: Path
    provenance: dict
    generator: dict[str, torch.Tensor]
    discriminator: dict[str, torch.Tensor]
    # Per part, the weights that read the condition: left out of an unlabelled prior (zero at
    # the start), stored in a labelled one.
    condition_keys: dict[str, set[str]]
    sha256: str
    # A labelled prior's class names in label-column order and whether several can be set at
    # once; None for an unlabelled prior.
    classes: tuple[str, ...] | None = None
    multi_label: bool = False


def resolve_prior_path(name: str) -> Path:
    """A relative name is a folder under the repository's priors/."""
    path = Path(name).expanduser()
    return path if path.is_absolute() else PRIOR_DIR / path


def prior_hash(folder: Path) -> str:
    """sha256 over the prior's two files, each preceded by its name."""
    digest = hashlib.sha256()
    for name in (WEIGHTS, PROVENANCE):
        digest.update(name.encode() + b"\0")
        digest.update((folder / name).read_bytes())
    return digest.hexdigest()


def condition_keys(model: ModelConfig, resolution: int) -> dict[str, set[str]]:
    """Per part, the state-dict keys whose shapes depend on the number of classes: the
    weights that read the condition."""
    one, two = build_models(1, resolution, model), build_models(2, resolution, model)
    keys = {}
    for part, a, b in zip(PARTS, one, two):
        first, second = a.state_dict(), b.state_dict()
        keys[part] = {key for key in first if first[key].shape != second[key].shape}
    return keys


def write_prior(
    folder: Path,
    generator: nn.Module,
    discriminator: nn.Module,
    provenance: dict,
    resolution: int,
    model: ModelConfig,
    *,
    classes: tuple[str, ...] | None = None,
    multi_label: bool = False,
) -> str:
    """Writes the prior's two files; returns its hash. Without `classes` the condition
    weights are left out; with them they are kept, with the class names."""
    conditioned = condition_keys(model, resolution)
    skip = {part: set() if classes else conditioned[part] for part in PARTS}
    weights = {
        "format": FORMAT,
        "condition_keys": {part: sorted(conditioned[part]) for part in PARTS},
    }
    if classes:
        weights["classes"] = {"names": list(classes), "multi_label": multi_label}
    for part, module in zip(PARTS, (generator, discriminator)):
        state = module.state_dict()
        weights[part] = {k: v.detach().cpu() for k, v in state.items() if k not in skip[part]}
    torch_save(weights, folder / WEIGHTS)
    write_text(folder / PROVENANCE, json.dumps(provenance, indent=2, sort_keys=True) + "\n")
    return prior_hash(folder)


def read_prior(name: str) -> Prior:
    """The prior `model.prior` names; a missing or unreadable one is a UserError."""
    folder = resolve_prior_path(name)
    missing = [f for f in (WEIGHTS, PROVENANCE) if not (folder / f).is_file()]
    if missing:
        raise UserError(
            f"model.prior: {folder} has no {' or '.join(missing)}; build the prior with "
            "`privsynth prior build`, or set model.prior to '' to start without one"
        )
    try:
        provenance = json.loads((folder / PROVENANCE).read_text())
        weights = torch.load(folder / WEIGHTS, map_location="cpu", weights_only=True)
    except (OSError, ValueError, RuntimeError, pickle.UnpicklingError) as error:
        raise UserError(f"model.prior: cannot read the prior in {folder} ({error})") from None
    if (
        not isinstance(provenance, dict)
        or not isinstance(weights, dict)
        or weights.get("format") != FORMAT
        or provenance.get("format") != FORMAT
        or not all(isinstance(weights.get(part), dict) for part in PARTS)
        or not isinstance(weights.get("condition_keys"), dict)
        or not _classes_readable(weights.get("classes"))
    ):
        raise UserError(
            f"model.prior: {folder} is not a prior of format {FORMAT}; rebuild it with "
            "`privsynth prior build`"
        )
    classes = weights.get("classes")
    return Prior(
        folder,
        provenance,
        weights["generator"],
        weights["discriminator"],
        {part: set(weights["condition_keys"].get(part, ())) for part in PARTS},
        prior_hash(folder),
        classes=tuple(classes["names"]) if classes else None,
        multi_label=bool(classes and classes["multi_label"]),
    )


def _classes_readable(classes: object) -> bool:
    """An unlabelled prior has none; a labelled one its names and whether multi-label."""
    return classes is None or (
        isinstance(classes, dict)
        and isinstance(classes.get("names"), list)
        and all(isinstance(name, str) for name in classes["names"])
        and isinstance(classes.get("multi_label"), bool)
    )


def check_fits(prior: Prior, config: Config) -> None:
    """A UserError naming the first setting the prior was built for that the config lacks."""
    built = prior.provenance
    model = built.get("model") if isinstance(built.get("model"), dict) else {}
    pairs = [
        ("data.resolution", built.get("resolution"), config.data.resolution),
        ("channels", built.get("channels"), CHANNELS),
    ] + [(f"model.{key}", model.get(key), getattr(config.model, key)) for key in MODEL_KEYS]
    for key, prior_value, config_value in pairs:
        if prior_value != config_value:
            raise UserError(
                f"model.prior: {prior.folder} was built for {key}={prior_value}, but the config "
                f"has {key}={config_value}; build a prior with that setting "
                f"(`privsynth prior build`) or set model.prior to one built for it"
            )
    declared = declared_class_names(config)
    if prior.classes is not None and declared and declared != prior.classes:
        raise _other_classes(prior, declared)


def _other_classes(prior: Prior, class_names: tuple[str, ...]) -> UserError:
    kind = "multi-label findings" if prior.multi_label else "classes (one per image)"
    return UserError(
        f"model.prior: {prior.folder} is labelled with the {kind} {', '.join(prior.classes)}, "
        f"but the data's classes are {', '.join(class_names)}; use a prior built without "
        "--classes, or one built with the data's classes"
    )


def load_prior(name: str, config: Config) -> Prior:
    prior = read_prior(name)
    check_fits(prior, config)
    return prior


def start_from(
    prior: Prior,
    generator: nn.Module,
    discriminator: nn.Module,
    *,
    class_names: tuple[str, ...],
    multi_label: bool,
) -> None:
    """Loads the prior into freshly built models for data of `class_names` (each component
    of a mixture). The weights that read the condition start at zero, or, from a labelled
    prior, as it learnt them; a labelled prior of other classes is a UserError."""
    labelled = prior.classes is not None
    if labelled and (tuple(class_names), multi_label) != (prior.classes, prior.multi_label):
        raise _other_classes(prior, tuple(class_names))
    for component in components_of(generator):
        _load(prior, "generator", component, with_condition=labelled)
    _load(prior, "discriminator", discriminator, with_condition=labelled)


def start_from_discriminator(prior: Prior, discriminator: nn.Module) -> None:
    """Loads the prior's discriminator without the weights that read the condition (its
    layers are the mean embedding's encoder)."""
    _load(prior, "discriminator", discriminator, with_condition=False)


def _load(prior: Prior, part: str, module: nn.Module, *, with_condition: bool) -> None:
    weights, state = getattr(prior, part), module.state_dict()
    if not with_condition:
        weights = {k: v for k, v in weights.items() if k not in prior.condition_keys[part]}
    extra = sorted(set(weights) - set(state))
    wrong = sorted(k for k in set(weights) & set(state) if weights[k].shape != state[k].shape)
    absent = sorted(set(state) - set(weights) - prior.condition_keys[part])
    if extra or wrong or absent:
        raise UserError(
            f"model.prior: the {part} in {prior.folder} does not fit the config's model "
            f"({(extra + wrong + absent)[0]}); rebuild the prior for this config"
        )
    loaded = {k: weights[k] if k in weights else torch.zeros_like(v) for k, v in state.items()}
    module.load_state_dict(loaded)
