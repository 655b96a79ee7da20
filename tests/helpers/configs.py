"""Small run configurations: override lists for tiny, fast runs, and the attacks' budgets."""

from attacks.context import AttackOptions
from common.config import Config, config_from_dict

# A run small enough for real DP training in a test: 28 px phantom images, 8-wide models
# (no preset's prior fits them), two sites, three rounds of two local steps, three samples
# per class.
TINY = [
    "data.resolution=28",
    "model.prior=",
    "data.phantom.num_patients=30",
    "data.phantom.images_per_patient=2",
    "model.latent_dim=8",
    "model.generator_width=8",
    "model.discriminator_width=8",
    "training.batch_size=8",
    "federation.num_sites=2",
    "federation.rounds=3",
    "federation.local_steps=2",
    "output.samples_per_class=3",
    "output.grid_columns=3",
]


def tiny_config(*extra: str) -> Config:
    """The default config with TINY and then `extra` overrides."""
    return config_from_dict({}, [*TINY, *extra])


# A planted run for the attack tests (see run_folders.write_planted_run).
PLANTED = [
    "data.phantom.num_patients=40",
    "data.holdout_fraction=0.5",
    "federation.num_sites=2",
    # The DP-audit test: cheap steps, and a discriminator that fits its canaries without
    # saturating (at 0.002 its logits on them reach ~50 and the audit's bound was 0 for 1 seed
    # in 8; at 0.0005 it was 0.60-1.54 over seeds 0-7).
    "training.batch_size=16",
    "training.discriminator_lr=0.0005",
]
# Tiny budgets: the attacks' own training only has to work, not to be good.
ATTACK_OPTIONS = AttackOptions(
    auxiliary_patients=60,
    embedding_steps=40,
    linkage_steps=80,
    reconstruction_steps=30,
    audit_steps=40,
    audit_canaries=40,
)
