"""The cluster stage: personas by constrained k-means over user embeddings, for one or several partitions.

Two paths give clusters of at least ``size_min`` users (and at most ``size_max``):
- ``exact``: ``k_means_constrained.KMeansConstrained``, which solves a min-cost flow
  at every iteration. It honours both bounds, and is slow at paper scale.
- ``fast``: for the common case where only ``size_min`` is set. Ordinary k-means
  (scikit-learn), then a repair step that moves the cheapest points into undersized
  clusters, alternated with centroid updates until the assignment is stable; each
  of ``n_init`` starts is repaired and the best result kept. The constraint is
  checked on every result. When many natural groups are smaller than ``size_min``,
  more starts help (or use ``exact``).

``method="auto"`` takes the fast path when no ``size_max`` is set, and says so in the
log. Cluster ids are renumbered by size (largest first, ties by centroid order), so
they are the same for the same seed whatever the path's internal numbering.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from blueprint.errors import BadInputError
from blueprint.simpact.config import ClusterConfig

log = logging.getLogger(__name__)


@dataclass
class Partition:
    """One clustering: labels per user, centroids, and how it was made."""

    k: int
    labels: np.ndarray
    centroids: np.ndarray
    inertia: float
    method: str

    @property
    def sizes(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=self.k)


def check_feasible(n: int, k: int, size_min: int, size_max: int | None) -> None:
    """Raise a clear error when no assignment can meet the size bounds."""
    if k * size_min > n:
        raise BadInputError(
            f"cannot make {k} clusters of at least {size_min} users from {n} users (k x size_min = {k * size_min}); "
            "lower k or --size-min, or add data", field="partitions")
    if size_max is not None and k * size_max < n:
        raise BadInputError(f"cannot fit {n} users into {k} clusters of at most {size_max}", field="size_max")


def _inertia(x: np.ndarray, labels: np.ndarray, centroids: np.ndarray) -> float:
    diff = x - centroids[labels]
    return float(np.einsum("ij,ij->", diff, diff))


def _sq_dists(x: np.ndarray, centroids: np.ndarray, x_sq: np.ndarray) -> np.ndarray:
    """Squared distances, n x k, built in place: one n x k matrix at a time (1.9 GB at n = 236k, k = 1000),
    and the same bits as ``x_sq - 2 x.c + c_sq``."""
    d = x @ centroids.T
    d *= -2.0
    d += x_sq[:, None]
    d += np.einsum("ij,ij->i", centroids, centroids)[None, :]
    np.maximum(d, 0.0, out=d)
    return d


def repair(labels: np.ndarray, dist: np.ndarray, size_min: int) -> np.ndarray:
    """Move the cheapest points into clusters smaller than ``size_min``.

    ``dist[i, c]`` is the squared distance of point i to centroid c. A point may
    leave a cluster only while that cluster stays at or above ``size_min``. The
    cost of a move is the rise in squared distance; the cheapest moves go first.
    """
    labels = labels.copy()
    k = dist.shape[1]
    sizes = np.bincount(labels, minlength=k)
    rows = np.arange(len(labels))
    for c in np.argsort(sizes, kind="stable"):
        need = size_min - sizes[c]
        if need <= 0:
            continue
        cost = dist[:, c] - dist[rows, labels]
        cost[labels == c] = np.inf
        for i in np.argsort(cost, kind="stable"):
            if need == 0:
                break
            src = labels[i]
            if not np.isfinite(cost[i]):
                break
            if sizes[src] > size_min:
                labels[i] = c
                sizes[src] -= 1
                sizes[c] += 1
                need -= 1
    return labels


def _fast(x: np.ndarray, k: int, size_min: int, seed: int, n_init: int, max_iter: int) -> Partition:
    """k-means from ``n_init`` starts, each repaired to the constraint; the best repaired result wins.

    Repairing every start, rather than only the start with the best unconstrained
    inertia, matters when many natural groups are smaller than ``size_min``: the best
    unconstrained solution is then not the best constrained one.
    """
    x64 = x.astype(np.float64)
    x_sq = np.einsum("ij,ij->i", x64, x64)
    best: Partition | None = None
    for start in range(n_init):
        part = _fast_one(x, x64, x_sq, k, size_min, seed + start, max_iter)
        if best is None or part.inertia < best.inertia - 1e-9 * max(1.0, abs(best.inertia)):
            best = part
    assert best is not None
    return best


def _fast_one(x: np.ndarray, x64: np.ndarray, x_sq: np.ndarray, k: int, size_min: int, seed: int,
              max_iter: int) -> Partition:
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters=k, n_init=1, random_state=seed, max_iter=max_iter).fit(x)
    centroids = km.cluster_centers_.astype(np.float64)
    labels = km.labels_.astype(np.int64)
    if np.bincount(labels, minlength=k).min() >= size_min:
        return Partition(k, labels, centroids, _inertia(x64, labels, centroids), "fast")
    best = None
    for _ in range(50):
        dist = _sq_dists(x64, centroids, x_sq)
        labels = repair(dist.argmin(1), dist, size_min)
        new_centroids = np.zeros_like(centroids)
        np.add.at(new_centroids, labels, x64)
        new_centroids /= np.bincount(labels, minlength=k)[:, None]
        inertia = _inertia(x64, labels, new_centroids)
        if best is not None and inertia >= best[0] - 1e-9 * max(1.0, abs(best[0])):
            break
        best = (inertia, labels, new_centroids)
        centroids = new_centroids
    assert best is not None  # the first repair always improves on nothing
    inertia, labels, centroids = best
    return Partition(k, labels, centroids, inertia, "fast")


def _exact(x: np.ndarray, k: int, size_min: int, size_max: int | None, seed: int, n_init: int,
           max_iter: int) -> Partition:
    from k_means_constrained import KMeansConstrained

    km = KMeansConstrained(n_clusters=k, size_min=size_min, size_max=size_max, random_state=seed,
                           n_init=n_init, max_iter=max_iter, n_jobs=1).fit(x.astype(np.float64))
    labels = np.asarray(km.labels_, dtype=np.int64)
    centroids = np.asarray(km.cluster_centers_, dtype=np.float64)
    return Partition(k, labels, centroids, _inertia(x.astype(np.float64), labels, centroids), "exact")


def _renumber(p: Partition) -> Partition:
    """Cluster 0 is the largest; ties keep the path's order. Makes ids independent of the path."""
    sizes = p.sizes
    order = np.lexsort((np.arange(p.k), -sizes))
    new_id = np.empty(p.k, dtype=np.int64)
    new_id[order] = np.arange(p.k)
    return Partition(p.k, new_id[p.labels], p.centroids[order], p.inertia, p.method)


def cluster(x: np.ndarray, k: int, config: ClusterConfig) -> Partition:
    """Cluster the rows of ``x`` into ``k`` groups under the config's size bounds."""
    n = len(x)
    check_feasible(n, k, config.size_min, config.size_max)
    method = config.method
    if method == "auto":
        method = "fast" if config.size_max is None else "exact"
        why = "only size_min is set" if method == "fast" else "size_max is set"
        log.info("cluster k=%d: %s path (%s)", k, method, why)
    if k == 1:
        labels = np.zeros(n, dtype=np.int64)
        centroids = x.astype(np.float64).mean(0, keepdims=True)
        part = Partition(1, labels, centroids, _inertia(x.astype(np.float64), labels, centroids), method)
    elif method == "fast":
        part = _fast(x, k, config.size_min, config.seed, config.n_init, config.max_iter)
    else:
        part = _exact(x, k, config.size_min, config.size_max, config.seed, config.n_init, config.max_iter)
    part = _renumber(part)
    sizes = part.sizes
    if sizes.min() < config.size_min or (config.size_max is not None and sizes.max() > config.size_max):
        raise RuntimeError(f"k={k}: the {part.method} path broke the size constraint (sizes {sizes.min()}.."
                           f"{sizes.max()}, bounds {config.size_min}..{config.size_max})")
    log.info("cluster k=%d: sizes %d..%d, inertia %.4f", k, sizes.min(), sizes.max(), part.inertia)
    return part
