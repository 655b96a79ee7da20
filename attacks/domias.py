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
from attacks.registry import SYNTHETIC_ONLY, AttackResult, register

COMPONENTS = 8


def _density(samples: np.ndarray) -> KernelDensity:
    # Scott's rule on whitened components: one bandwidth fits every axis.
    bandwidth = len(samples) ** (-1.0 / (samples.shape[1] + 4))
    return KernelDensity(bandwidth=bandwidth).fit(samples)


@register(
    "mia-domias",
    SYNTHETIC_ONLY,
    "density ratio p_synthetic / p_reference with KDEs in the self-supervised embedding (DOMIAS)",
    "higher score (synthetic density above reference density) = member",
)
def attack(context: AttackContext) -> AttackResult:
    reference = context.embedding("auxiliary")
    components = min(COMPONENTS, reference.shape[1], len(reference) - 1)
    pca = PCA(components, whiten=True, random_state=context.options.seed).fit(reference)
    synthetic_density = _density(pca.transform(context.embedding("synthetic")))
    reference_density = _density(pca.transform(reference))

    def score(embeddings: np.ndarray) -> np.ndarray:
        projected = pca.transform(embeddings)
        return synthetic_density.score_samples(projected) - reference_density.score_samples(
            projected
        )

    return AttackResult(
        findings={"pca_components": int(components)},
        membership={
            "density ratio": context.membership_metrics(
                score(context.embedding("members")), score(context.embedding("nonmembers"))
            )
        },
    )
