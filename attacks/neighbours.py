"""Nearest neighbours by pixel L2 and by cosine similarity of embeddings, chunked."""

import numpy as np
import torch

CHUNK = 1024


def pixels(images: np.ndarray) -> np.ndarray:
    """uint8 (N, R, R) -> float32 (N, R*R) in [0, 1]: L2 in these units is resolution-aware."""
    return images.reshape(len(images), -1).astype(np.float32) / 255.0


def nearest(
    queries: np.ndarray, gallery: np.ndarray, k: int = 1, skip_identical: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(distances, indices), each (N, k): the k nearest gallery rows by L2.

    skip_identical: ignore gallery rows at distance 0 (a query that is itself in the gallery).
    """
    gallery_t = torch.from_numpy(gallery)
    distances, indices = [], []
    for start in range(0, len(queries), CHUNK):
        d = torch.cdist(torch.from_numpy(queries[start : start + CHUNK]), gallery_t)
        if skip_identical:
            d = torch.where(d <= 1e-6, torch.inf, d)
        values, index = d.topk(min(k, d.shape[1]), dim=1, largest=False)
        distances.append(values.numpy())
        indices.append(index.numpy())
    return np.concatenate(distances), np.concatenate(indices)


def most_similar(
    queries: np.ndarray, gallery: np.ndarray, k: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """(similarities, indices), each (N, k): the k gallery rows of highest cosine similarity
    (embeddings are unit-norm)."""
    gallery_t = torch.from_numpy(gallery)
    similarities, indices = [], []
    for start in range(0, len(queries), CHUNK):
        s = torch.from_numpy(queries[start : start + CHUNK]) @ gallery_t.T
        values, index = s.topk(min(k, s.shape[1]), dim=1)
        similarities.append(values.numpy())
        indices.append(index.numpy())
    return np.concatenate(similarities), np.concatenate(indices)
