"""How real a public prior's own films look: a screen for prior recipes on public data.

The prior's generator draws `--samples` films unconditionally (every condition zero, as it was
trained), or, from a labelled prior, conditioned on the real films' labels in a shuffled
order; the evaluation's detector (evaluation/realism.py) is trained and scored on them
against `--samples` films of a real set the prior never saw, one label for all. On the phantom,
where the public and the private films come from one distribution, this measures the recipe
alone (architecture, widths, steps, weight average), free of any domain shift, and it costs
no privacy: choose recipes here, not on a site's data. Appends one JSON line to --out and
writes the films beside real ones to --figure.

usage: python benchmarks/prior_realism.py PRIOR REAL.npz [--samples 4000] [--seed 0]
    [--out runs/prior-realism.jsonl] [--figure PNG]
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.config import config_from_dict  # noqa: E402
from common.models import build_models  # noqa: E402
from common.prior.build import read_public_images, read_public_set  # noqa: E402
from common.prior.file import MODEL_KEYS, Prior, read_prior, start_from  # noqa: E402
from evaluation.figures import sample_comparison  # noqa: E402
from evaluation.realism import detect  # noqa: E402

BATCH = 500


def prior_films(prior: Prior, conditions: np.ndarray, *, seed: int) -> np.ndarray:
    """uint8 films (len(conditions), R, R) the prior's generator draws for `conditions`."""
    provenance = prior.provenance
    config = config_from_dict(
        {"data": {"resolution": provenance["resolution"]}},
        [f"model.{key}={provenance['model'][key]}" for key in MODEL_KEYS],
    )
    classes = prior.classes or ("public",)
    generator, discriminator = build_models(len(classes), config.data.resolution, config.model)
    start_from(prior, generator, discriminator, class_names=classes, multi_label=prior.multi_label)
    generator.eval()
    latents = torch.Generator().manual_seed(seed)
    films = []
    with torch.no_grad():
        for start in range(0, len(conditions), BATCH):
            condition = torch.from_numpy(conditions[start : start + BATCH])
            z = torch.randn(len(condition), config.model.latent_dim, generator=latents)
            films.append(generator(z, condition).squeeze(1))
    images = ((torch.cat(films).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return images.numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("prior", help="the prior's folder")
    parser.add_argument("real", help="a .npz of real films the prior never saw")
    parser.add_argument("--samples", type=int, default=4000, help="films a side")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/prior-realism.jsonl")
    parser.add_argument("--figure", help="a PNG of the prior's films beside real ones")
    args = parser.parse_args()

    prior = read_prior(str(Path(args.prior).resolve()))
    provenance = prior.provenance
    if prior.classes:
        real, labels = read_public_set(
            Path(args.real),
            provenance["resolution"],
            classes=prior.classes,
            multi_label=prior.multi_label,
        )
        real, labels = real[: args.samples], labels[: args.samples]
        conditions = np.random.default_rng(args.seed).permutation(labels)
    else:
        real = read_public_images(Path(args.real), provenance["resolution"])[: args.samples]
        conditions = np.zeros((args.samples, 1), np.float32)
    synthetic = prior_films(prior, conditions, seed=args.seed)
    one_label = np.ones((1, 1), np.float32)
    result = detect(
        real=real,
        synthetic=synthetic,
        real_labels=one_label.repeat(len(real), 0),
        synthetic_labels=one_label.repeat(len(synthetic), 0),
        class_names=["all"],
        multi_label=False,
        seed=args.seed,
    )
    row = {
        "prior": args.prior,
        "command": provenance["command"],
        "real": Path(args.real).name,
        "samples": len(synthetic),
        "seed": args.seed,
        "detector_auc": round(result.auc, 4),
        "detector_auc_ci95": [round(v, 4) for v in result.auc_interval],
    }
    print(json.dumps(row))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a") as lines:
        lines.write(json.dumps(row) + "\n")
    if args.figure:
        sample_comparison([("prior", synthetic[:10], real[:10])], Path(args.figure))


if __name__ == "__main__":
    main()
