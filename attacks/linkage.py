"""Patient linkage (Packhäuser et al. 2022): do synthetic images show training patients?

Threat model: the attacker sees the released synthetic images and holds real images of the
same modality with patient IDs (the auxiliary data) to train a verification network; the
auditor then asks whether synthetic images re-identify training patients.

A siamese encoder (two images of one patient are the two views of a contrastive loss) is
trained on auxiliary patients; its verification AUC on held-out auxiliary patients comes first
(the positive control; below VERIFICATION_AUC_FLOOR the verdict is inconclusive): a network
that cannot link two real images of one patient proves nothing about synthetic ones.
Pair score: cosine similarity (higher = same patient); the match threshold is the one with
0.1% false positives on real different-patient pairs.

Reported, each against its chance baseline:
- the share of synthetic images whose best match among the training images passes the
  threshold, next to the same share for real non-member images (holdout; a best match over
  thousands of training images passes a per-pair threshold by chance often);
- the share of training patients hit by such a match;
- precision@1: in a gallery of one image each of as many training patients as non-member
  patients, how often a synthetic query's best match is a training patient (chance 0.5: the
  two halves differ only in whether the generator saw them), tested by relabelling the
  gallery's patients at random.
"""

import numpy as np
import torch
from scipy.stats import binomtest
from sklearn.metrics import roc_auc_score

from attacks.context import AttackContext
from attacks.controls import VERIFICATION_AUC_FLOOR, power
from attacks.embedding import augment, cached_encoder, embed, to_tensor, train_contrastive
from attacks.neighbours import most_similar
from attacks.registry import SYNTHETIC_ONLY, AttackResult, register
from common.config import config_to_dict
from common.data import ImageSet
from common.device import CPU

PAIR_FPR = 0.001
BATCH_PATIENTS = 64
SIGNIFICANCE = 0.01
PERMUTATIONS = 2000


def train_linkage(data: ImageSet, steps: int, seed: int, *, device: torch.device = CPU):
    """Siamese encoder, trained on `device`: NT-Xent with two images of one patient as the
    positive pair."""
    images = to_tensor(data.images).to(device)
    keys = data.patient_keys()
    by_patient = [np.flatnonzero(keys == p) for p in np.unique(keys)]
    by_patient = [rows for rows in by_patient if len(rows) >= 2]
    generator = np.random.default_rng(seed)

    def views(rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        chosen = generator.choice(len(by_patient), min(BATCH_PATIENTS, len(by_patient)), False)
        pairs = np.array([generator.choice(by_patient[p], 2, replace=False) for p in chosen])
        return augment(images[pairs[:, 0]], rng), augment(images[pairs[:, 1]], rng)

    return train_contrastive(views, steps, seed, "patient-linkage network", device=device)


def pair_similarities(embeddings: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(same-patient, different-patient) cosine similarities over all pairs."""
    similarity = embeddings @ embeddings.T
    upper = np.triu(np.ones_like(similarity, dtype=bool), k=1)
    same = keys[:, None] == keys[None, :]
    return similarity[upper & same], similarity[upper & ~same]


def split_patients(data: ImageSet, seed: int) -> tuple[ImageSet, ImageSet]:
    """(training, verification) auxiliary images, patient-disjoint, 3:1 by patient."""
    keys = data.patient_keys()
    patients = np.random.default_rng(seed).permutation(np.unique(keys))
    held_out = np.isin(keys, patients[: max(2, len(patients) // 4)])
    return data.subset(np.flatnonzero(~held_out)), data.subset(np.flatnonzero(held_out))


def one_image_per_patient(data: ImageSet, rng: np.random.Generator) -> ImageSet:
    """One random image of each patient, patients in random order."""
    keys = data.patient_keys()
    patients = rng.permutation(np.unique(keys))
    return data.subset(np.array([rng.choice(np.flatnonzero(keys == p)) for p in patients]))


def retrieval_p_value(
    top: np.ndarray, member_count: int, gallery_size: int, rng: np.random.Generator
) -> float:
    """P-value of how many queries retrieve a training patient, against the gallery's patients
    relabelled at random (the first member_count are the training patients).

    Queries are not independent: poor synthetic images all find the same few "hub" gallery
    images, so a binomial test over queries would call a hub on the training side a leak.
    """
    hits = np.bincount(top, minlength=gallery_size)
    observed = hits[:member_count].sum()
    labels = np.arange(gallery_size) < member_count
    null = np.array([hits[rng.permutation(labels)].sum() for _ in range(PERMUTATIONS)])
    return float((1 + (null >= observed).sum()) / (1 + PERMUTATIONS))


def paired_patients(data: ImageSet) -> int:
    """Patients with at least two images: the only ones a pair of one patient can come from."""
    return int((np.unique(data.patient_keys(), return_counts=True)[1] >= 2).sum())


def verification_power(train: ImageSet, verify: ImageSet, *, auc: float, steps: int) -> dict:
    """The positive control: can the network link two real images of one patient at all?"""
    trained, verified = paired_patients(train), paired_patients(verify)
    return power(
        control=f"verification AUC on real pairs of {verified} held-out auxiliary patients",
        value=auc,
        floor=VERIFICATION_AUC_FLOOR,
        count=verified,
        advice=(
            f"more auxiliary patients with two or more images (it trained on {trained} and "
            f"verified on {verified}; auxiliary_patients for phantom runs, a larger holdout "
            f"otherwise) or a longer schedule (linkage_steps, now {steps})"
        ),
    )


def _significantly_above(hits: int, trials: int, chance: float) -> float:
    if trials == 0:
        return 1.0
    return float(binomtest(hits, trials, min(max(chance, 1e-12), 1.0), "greater").pvalue)


@register(
    "patient-linkage",
    SYNTHETIC_ONLY,
    "siamese re-identification network (Packhäuser et al.) trained on auxiliary patients; "
    "synthetic images matched to training patients",
    "higher similarity = same patient",
)
def attack(context: AttackContext) -> AttackResult:
    run = context.run
    if not run.members.has_patient_ids or not context.auxiliary.has_patient_ids:
        return AttackResult(skipped="the data has no patient IDs, so linkage cannot be tested")
    options = context.options
    train, verify = split_patients(context.auxiliary, options.seed)
    key = {
        "purpose": "patient-linkage",
        "data": config_to_dict(run.config)["data"],
        "auxiliary": context.auxiliary_source,
        "steps": options.linkage_steps,
        "seed": options.seed,
    }
    encoder = cached_encoder(
        context.cache_dir,
        key,
        lambda: train_linkage(train, options.linkage_steps, options.seed, device=context.device),
        device=context.device,
    )
    same, different = pair_similarities(embed(encoder, verify.images), verify.patient_keys())
    auc = roc_auc_score(np.r_[np.ones(len(same)), np.zeros(len(different))], np.r_[same, different])
    threshold = float(np.quantile(different, 1 - PAIR_FPR))

    training = embed(encoder, run.members.images)
    training_patients = run.members.patient_keys()
    synthetic = embed(encoder, run.synthetic.images)
    synthetic_best, synthetic_match = most_similar(synthetic, training)
    baseline_best = most_similar(embed(encoder, context.nonmembers.images), training)[0]
    matched = synthetic_best[:, 0] > threshold
    baseline_share = float((baseline_best[:, 0] > threshold).mean())
    patients_hit = np.unique(training_patients[synthetic_match[matched, 0]])

    rng = np.random.default_rng(options.seed)
    nonmember_side = one_image_per_patient(context.nonmembers, rng)
    member_side = one_image_per_patient(run.members, rng)
    member_side = member_side.subset(np.arange(min(len(member_side), len(nonmember_side))))
    gallery = np.concatenate(
        [embed(encoder, member_side.images), embed(encoder, nonmember_side.images)]
    )
    top = most_similar(synthetic, gallery)[1][:, 0]
    member_share = len(member_side) / len(gallery)
    retrieved_members = int((top < len(member_side)).sum())

    match_p = _significantly_above(int(matched.sum()), len(matched), baseline_share)
    retrieval_p = retrieval_p_value(top, len(member_side), len(gallery), rng)
    findings = {
        "verification_auc": float(auc),
        "verification_pairs": {"same": int(len(same)), "different": int(len(different))},
        "threshold_at_0.1%_pair_fpr": threshold,
        "threshold_resolved": bool(len(different) * PAIR_FPR >= 1),
        "synthetic_matched_share": float(matched.mean()),
        "nonmember_matched_share": baseline_share,
        "matched_share_p_value": match_p,
        "training_patients_hit_share": float(len(patients_hit) / len(np.unique(training_patients))),
        "precision_at_1": float(retrieved_members / len(top)),
        "precision_at_1_chance": float(member_share),
        "precision_at_1_p_value": retrieval_p,
    }
    linked = auc > 0.6 and min(match_p, retrieval_p) < SIGNIFICANCE
    return AttackResult(
        findings=findings,
        leaked=bool(linked),
        power=verification_power(train, verify, auc=float(auc), steps=options.linkage_steps),
        summary=(
            f"verification AUC {auc:.3f} on real pairs; {matched.mean():.1%} of synthetic images "
            f"match a training patient (real non-members: {baseline_share:.1%}); precision@1 "
            f"{retrieved_members / len(top):.3f} (chance {member_share:.3f})"
        ),
    )
