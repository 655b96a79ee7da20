"""The conditions a generator is sampled with, in one order everywhere: one per class, and for
multi-label data a last all-zero "no finding" condition (the release's last group too).

Conditions for training batches come from a public prior, never from private labels.
"""

import numpy as np
import torch
import torch.nn.functional as F

NO_FINDING = "no finding"


def condition_rows(class_names: tuple[str, ...], multi_label: bool) -> list[tuple[str, np.ndarray]]:
    """(row name, condition): one per class; multi-label data adds "no finding" last."""
    eye = np.eye(len(class_names), dtype=np.float32)
    rows = [(name, eye[i]) for i, name in enumerate(class_names)]
    if multi_label:
        rows.append((NO_FINDING, np.zeros(len(class_names), dtype=np.float32)))
    return rows


def condition_groups(
    labels: np.ndarray, class_names: tuple[str, ...], multi_label: bool
) -> list[tuple[str, np.ndarray]]:
    """(row name, indices of images whose label is exactly that condition), in the order of
    condition_rows; real images with several findings are in none."""
    return [
        (name, np.flatnonzero((labels == condition).all(axis=1)))
        for name, condition in condition_rows(class_names, multi_label)
    ]


def group_membership(labels: torch.Tensor, multi_label: bool) -> torch.Tensor:
    """(N, G) membership of each image in the condition groups: its class (G = K), or for
    multi-label data its findings and a last "no finding" group (G = K + 1)."""
    if not multi_label:
        return labels
    no_finding = 1.0 - labels.amax(dim=1, keepdim=True)
    return torch.cat([labels, no_finding], dim=1)


def label_name(label: np.ndarray, class_names: tuple[str, ...]) -> str:
    """A label in words: its classes or findings, or "no finding"."""
    names = [name for name, on in zip(class_names, label) if on > 0.5]
    return ", ".join(names) or NO_FINDING


def sample_conditions(
    count: int,
    *,
    num_classes: int,
    multi_label: bool,
    prior: float,
    generator: torch.Generator,
    balanced: bool = False,
) -> torch.Tensor:
    """(count, K) conditions from the public prior: a uniform class (with `balanced`, every
    class count // K times, in class order), or each finding present with probability
    `prior`."""
    if multi_label:
        return (torch.rand(count, num_classes, generator=generator) < prior).float()
    if balanced:
        return torch.eye(num_classes).repeat_interleave(count // num_classes, dim=0)
    classes = torch.randint(num_classes, (count,), generator=generator)
    return F.one_hot(classes, num_classes).float()
