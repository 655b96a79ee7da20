"""What a site takes from the server's config, what it pins itself, and the ranges it accepts.

A deployed site reads the request's config (the server's resolved YAML) for the federation's
model and schedule only. Every key of that config is in exactly one of three lists:

- SERVER_SUPPLIED: used by the site as the server sends it, each within a range of the
  site's own (checked by `check_server_settings` before any data is read);
- SITE_PINNED: the site's own value (site.yaml) replaces the server's, or the site ignores
  the server's (a deployed site holds nothing out: the holdout and the untrained share are
  the simulation's);
- SERVER_ONLY: not read by a site at all.

`tests/client/test_server_settings.py` keeps the three lists a partition of the config's keys
and `docs/threat-model.md`'s table equal to SERVER_SUPPLIED.

The ranges keep every mechanism's input finite for any value the server may choose (a huge
learning rate, a vanishing kernel bandwidth) on top of the clipping, which zeroes any unit
whose contribution is not finite (client/per_sample_clipping.py, client/mean_embedding.py).
"""

import os
from dataclasses import dataclass
from typing import Any

from common.config import (
    ARCHITECTURES,
    METHODS,
    RESOLUTIONS,
    UPSAMPLING,
    Config,
    config_to_dict,
    get_dotted,
)


@dataclass(frozen=True)
class Range:
    """low <= value <= high (numbers; a list: each of its values), or value in `choices`, or
    any bool (neither given); `optional`: null is accepted too."""

    low: float | None = None
    high: float | None = None
    choices: tuple | None = None
    optional: bool = False

    def problem(self, value: Any) -> str:
        """Why `value` is outside the range; '' if it is inside."""
        values = value if isinstance(value, tuple | list) else (value,)
        for item in values:
            if self.choices is not None:
                if item not in self.choices:
                    return f"{item!r} is not one of {', '.join(map(str, self.choices))}"
                continue
            if item is None and self.optional:
                continue
            if self.low is None:
                if not isinstance(item, bool):
                    return f"{item!r} is not true or false"
                continue
            if not isinstance(item, int | float) or isinstance(item, bool):
                return f"{item!r} is not a number"
            if not (self.low <= item <= self.high):
                return f"{item!r} is outside [{self.low:g}, {self.high:g}]"
        return ""


ANY_FLAG = Range()
FRACTION = Range(0.0, 1.0)

# Config keys a site uses as the server sends them, with the ranges it accepts.
SERVER_SUPPLIED: dict[str, Range] = {
    "seed": Range(0, 2**63 - 1),
    "data.resolution": Range(choices=RESOLUTIONS),
    "model.architecture": Range(choices=ARCHITECTURES),
    "model.latent_dim": Range(1, 1024),
    "model.generator_width": Range(1, 512),
    "model.discriminator_width": Range(1, 512),
    "model.multilabel_prior": FRACTION,
    "model.generator_upsampling": Range(choices=UPSAMPLING),
    "training.method": Range(choices=METHODS),
    "training.batch_size": Range(1, 4096),
    "training.discriminator_steps_per_generator_step": Range(1, 1000),
    "training.generator_step_threshold": FRACTION,
    "training.discriminator_lr": Range(1e-8, 1.0),
    "training.generator_lr": Range(1e-8, 1.0),
    "training.beta1": FRACTION,
    "training.beta2": FRACTION,
    "training.mode_seeking_weight": Range(0.0, 100.0),
    "training.augmentation": ANY_FLAG,
    "training.release_share": Range(0.01, 0.99),
    "mean_embedding.frequencies": Range(1, 16384),
    "mean_embedding.bandwidth": Range(0.01, 100.0),
    "mean_embedding.pooling": Range(1, 128),
    "mean_embedding.detail": Range(0, 128),
    "mean_embedding.gradient": Range(0, 1),
    "mean_embedding.count_share": Range(0.001, 0.999, optional=True),
    "mean_embedding.prior_features": FRACTION,
    # Unless the site pins them (privacy.max_grad_norm, privacy.min_noise_multiplier).
    "privacy.noise_multiplier": Range(0.01, 1e4, optional=True),
    "privacy.max_grad_norm": Range(1e-4, 1e4),
    "runtime.threads_per_site": Range(1, os.cpu_count() or 1),
}

# Config keys whose value at a deployed site is its own (site.yaml) or none.
SITE_PINNED = (
    "data.source",
    "data.holdout_fraction",
    "data.holdout_split",
    "data.untrained_fraction",
    "data.dicom",
    "data.options",
    "privacy.target_epsilon",
    "privacy.delta",
    "privacy.max_epsilon",
    "privacy.unit",
    "privacy.accountant",
    "privacy.sites",
    "runtime.device",
    # A path on the server's machine: a deployed site reads no file the server names; its
    # own copy is `prior` in its site.yaml (client/site_config.with_site_prior).
    "model.prior",
)

# Config keys only the server reads.
SERVER_ONLY = (
    "name",
    "model.generator_components",
    "mean_embedding.generator_steps",
    "mean_embedding.batch_per_class",
    "mean_embedding.generator_lr",
    "mean_embedding.generator_ema",
    "mean_embedding.generator_layers",
    "federation",
    "output",
    "runtime.cpus_per_site",
    "runtime.sites_per_gpu",
)

# The request's own fields (common.protocol), besides the config: all range-checked too.
REQUEST_FIELDS: dict[str, Range] = {
    "round": Range(1, 10**6),
    "local_steps": Range(1, 100_000),
    "planned_steps": Range(1, 10**7),
    "share_discriminator": ANY_FLAG,
}


def check_server_settings(config: Config) -> str:
    """The first server-supplied setting outside the site's range, as a message naming the
    key; '' if all are inside."""
    return out_of_range(config_to_dict(config))


def out_of_range(raw: dict) -> str:
    """check_server_settings on a config's dictionary form."""
    for key, allowed in SERVER_SUPPLIED.items():
        problem = allowed.problem(get_dotted(raw, key))
        if problem:
            return f"the server's {key}: {problem}, outside what this site accepts"
    return ""


def check_request_fields(fields: dict[str, Any]) -> str:
    """The same for the request's round and step counts."""
    for key, allowed in REQUEST_FIELDS.items():
        problem = allowed.problem(fields[key])
        if problem:
            return f"the request's {key}: {problem}, outside what this site accepts"
    if fields["planned_steps"] < fields["local_steps"]:
        return (
            f"the request plans {fields['planned_steps']} steps but asks "
            f"{fields['local_steps']} in this round"
        )
    return ""
