"""Tiny public priors built in a test's folder by `privsynth prior build` (a few steps on
phantom films)."""

from pathlib import Path

import numpy as np

from cli.main import main
from common.data.phantom import FINDINGS, PhantomOptions, generate_phantom

# The models of tests.helpers.configs.TINY.
TINY_MODEL = ["model.latent_dim=8", "model.generator_width=8", "model.discriminator_width=8"]


def build_prior(
    tmp_path: Path, *settings: str, name: str = "prior", options: tuple[str, ...] = ()
) -> tuple[Path, Path]:
    """(the public .npz, the prior's folder) of a 28 px prior with the TINY models and
    `settings` after them; `options`: more command-line options of the build (LABELLED: the
    public films' findings condition it)."""
    public = tmp_path / "public.npz"
    if not public.exists():
        films = generate_phantom(PhantomOptions(num_patients=6, images_per_patient=2), 32)
        # 32 px: the build resizes to 28; the labels are the phantom's four findings, read
        # only by a build with --classes.
        np.savez(public, images=films.images, labels=films.labels.astype(np.uint8))
    out = tmp_path / name
    argv = ["prior", "build", str(public), "--out", str(out), "--resolution", "28"]
    argv += ["--licence", "CC BY-SA 4.0", "--steps", "2", *options]
    for setting in [*TINY_MODEL, "training.batch_size=4", *settings]:
        argv += ["--set", setting]
    assert main(argv) == 0
    return public, out


# Options of a build that learns from the public films' labels (their phantom findings).
LABELLED = ("--classes", ",".join(FINDINGS), "--multi-label")
