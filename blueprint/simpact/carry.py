"""Personas carried over from a previous build (``build --personas-from PREVIOUS``).

A rebuild that honours removal requests keeps ids and splits by design, but a fresh k-means
on the remaining users renumbers and reshapes the personas: ``25_clusters_c6`` would name
another group. Carried over, a partition keeps the previous build's centroids and numbering:

1. a user who was in the previous build keeps their cluster;
2. a user new to this build goes to the nearest previous centroid;
3. a cluster left under ``size_min`` (its users asked to be removed) takes the users whose move
   costs least (:func:`blueprint.simpact.cluster.repair`), centroids fixed; only then may a
   staying user change cluster, and the report counts every such move.

The previous build is named by its work folder (or its dataset folder, whose work folder is
``<dataset>-work``); its embedding and cluster stages must be there.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from blueprint.errors import BadInputError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Previous:
    """A previous build's personas: its users' vectors and each partition's labels."""

    work: Path
    dids: list[str]
    vectors: np.ndarray
    labels: dict[int, dict[str, int]]

    def centroids(self, k: int) -> np.ndarray:
        """The previous partition's centroids: the mean vector of each cluster's users, in its numbering."""
        x = self.vectors.astype(np.float64)
        lab = np.array([self.labels[k][d] for d in self.dids], dtype=np.int64)
        sums = np.zeros((k, x.shape[1]))
        np.add.at(sums, lab, x)
        return sums / np.maximum(np.bincount(lab, minlength=k), 1)[:, None]


def previous_work_dir(path: str | os.PathLike[str]) -> Path:
    """The work folder of a previous build, given it or the build's dataset folder."""
    p = Path(path)
    for cand in (p, p.parent / f"{p.name}-work"):
        if (cand / "cluster" / "partitions.parquet").is_file() and (cand / "embed" / "users.parquet").is_file():
            return cand
    raise BadInputError("not the work folder of a finished build (no cluster/partitions.parquet and "
                        "embed/users.parquet there, nor in <dataset>-work)", path=p, field="personas_from")


def personas_hash(path: str | os.PathLike[str]) -> str:
    """sha256 of the previous build's partitions: a rebuild carried over from other personas is another build."""
    return hashlib.sha256((previous_work_dir(path) / "cluster" / "partitions.parquet").read_bytes()).hexdigest()


def carry_over(dids: list[str], x: np.ndarray, k: int, previous: Previous, size_min: int,
               size_max: int | None) -> tuple[np.ndarray, np.ndarray, dict]:
    """This build's users in the previous partition ``k``: (labels, centroids, report)."""
    from blueprint.simpact.cluster import _sq_dists, check_feasible, repair

    if k not in previous.labels:
        raise BadInputError(f"the previous build has no partition of {k} clusters (it has "
                            f"{sorted(previous.labels)}); carry over only partitions it built",
                            path=previous.work, field="personas_from")
    if len(x) and previous.vectors.shape[1] != x.shape[1]:
        raise BadInputError(f"the previous build's embeddings have {previous.vectors.shape[1]} dimensions, this "
                            f"build's {x.shape[1]}: build with the same embedding model", path=previous.work,
                            field="personas_from")
    check_feasible(len(dids), k, size_min, size_max)
    centroids = previous.centroids(k)
    x64 = x.astype(np.float64)
    dist = _sq_dists(x64, centroids, np.einsum("ij,ij->i", x64, x64))
    before = previous.labels[k]
    labels = np.array([before.get(d, -1) for d in dids], dtype=np.int64)
    stayed = labels >= 0
    labels[~stayed] = dist[~stayed].argmin(1)
    placed = labels.copy()
    labels = repair(labels, dist, size_min)
    sizes = np.bincount(labels, minlength=k)
    if size_max is not None and sizes.max() > size_max:
        raise BadInputError(f"carried over, a cluster of {k} would hold {sizes.max()} users, over --size-max "
                            f"{size_max}; rebuild the personas without --personas-from", field="personas_from")
    kept = int((labels[stayed] == placed[stayed]).sum())
    report = {"method": "carried over", "users_stayed": int(stayed.sum()), "users_new": int((~stayed).sum()),
              "users_gone": len(set(before) - set(dids)), "kept_cluster": kept,
              "kept_share": kept / int(stayed.sum()) if stayed.any() else 1.0,
              "moved_by_repair": int((labels != placed).sum())}
    log.info("cluster k=%d: carried over from %s: %d of %d staying users keep their cluster, %d new users placed, "
             "%d moved to refill small clusters", k, previous.work, kept, report["users_stayed"],
             report["users_new"], report["moved_by_repair"])
    return labels, centroids, report
