"""DOMIAS (van Breugel et al. 2023): density ratio of the generator over the real population.

Threat model: the attacker sees the released synthetic images only, and a reference set of
real non-member images of the same modality.
Score: log p_synthetic(x) - log p_reference(x), both Gaussian KDEs in the self-supervised
embedding reduced by PCA (higher = member): a generator that overfits puts extra mass on its
training images, more than the population has there.
"""

import numpy as np
from sklearn.decomposition import PCA
from sklearn.neighbors import KernelDensity

from attacks.context import AttackContext
from attacks.controls import Queries, Scorer, copies_in_synthetic, membership_attack
from attacks.registry import SYNTHETIC_ONLY, AttackResult, register
from common.data import ImageSet

COMPONENTS = 8


def _density(samples: np.ndarray) -> KernelDensity:
    # Scott's rule on whitened components: one bandwidth fits every axis.
    bandwidth = len(samples) ** (-1.0 / (samples.shape[1] + 4))
    return KernelDensity(bandwidth=bandwidth).fit(samples)


def _components(reference: np.ndarray) -> int:
    return min(COMPONENTS, reference.shape[1], len(reference) - 1)


def scorer(context: AttackContext, synthetic: np.ndarray) -> Scorer:
    """Density ratios against `synthetic`, the synthetic set's embeddings."""
    reference = context.embedding("auxiliary")
    pca = PCA(_components(reference), whiten=True, random_state=context.options.seed)
    pca.fit(reference)
    synthetic_density = _density(pca.transform(synthetic))
    reference_density = _density(pca.transform(reference))

    def score(queries: Queries) -> dict[str, np.ndarray]:
        projected = pca.transform(context.embed(queries.data.images))
        ratio = synthetic_density.score_samples(projected) - reference_density.score_samples(
            projected
        )
        return {"density ratio": ratio}

    return score


@register(
    "mia-domias",
    SYNTHETIC_ONLY,
    "density ratio p_synthetic / p_reference with KDEs in the self-supervised embedding (DOMIAS)",
    "higher score (synthetic density above reference density) = member",
)
def attack(context: AttackContext) -> AttackResult:
    synthetic = context.embedding("synthetic")
    reference = context.embedding("auxiliary")

    def with_copies(added: ImageSet) -> Scorer:
        return scorer(context, np.concatenate([synthetic, context.embed(added.images)]))

    return membership_attack(
        context,
        score=scorer(context, synthetic),
        plant=copies_in_synthetic(with_copies),
        advice=(
            f"a longer embedding schedule (embedding_steps, now {context.options.embedding_steps})"
            f" or a larger reference set (now {len(reference)} auxiliary images)"
        ),
        findings={"pca_components": _components(reference)},
    )
