"""The cluster stage: every partition of the embedding stage's users, clustered afresh (:mod:`.cluster`) or carried
over from a previous build (:mod:`.carry`), into ``partitions.parquet``."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from blueprint._io import atomic_path
from blueprint.simpact.carry import Previous, carry_over, previous_work_dir
from blueprint.simpact.cluster import Partition, _inertia, cluster
from blueprint.simpact.config import ClusterConfig
from blueprint.simpact.embed import read_user_vectors


def cluster_users(embed_dir: Path, out_dir: Path, cfg: ClusterConfig) -> dict:
    """Every partition of the embedding stage's users into ``partitions.parquet`` (a column ``k<k>`` each)."""
    dids, x = read_user_vectors(embed_dir)
    cols: dict[str, pa.Array] = {"did": pa.array(dids, pa.string())}
    summary = {}
    previous = None
    if cfg.personas_from is not None:
        previous = load_previous(cfg.personas_from)
    for k in cfg.partitions:
        if previous is not None:
            labels, centroids, carried = carry_over(dids, x, k, previous, cfg.size_min, cfg.size_max)
            part = Partition(k, labels, centroids, _inertia(x.astype(np.float64), labels, centroids), "carried")
        else:
            part, carried = cluster(x, k, cfg), None
        cols[f"k{k}"] = pa.array(part.labels, pa.int64())
        sizes = part.sizes
        summary[str(k)] = {"method": part.method, "inertia": part.inertia, "size_min": int(sizes.min()),
                           "size_max": int(sizes.max()), "sizes": sizes.tolist()}
        if carried is not None:
            summary[str(k)]["carried_over"] = carried
    with atomic_path(out_dir / "partitions.parquet") as tmp:
        pq.write_table(pa.table(cols), tmp)
    return {"users": len(dids), "partitions": summary}


def read_partitions(cluster_dir: Path) -> dict[int, dict[str, int]]:
    """The stage's output: ``{k: {did: cluster}}`` for every partition."""
    t = pq.read_table(cluster_dir / "partitions.parquet")
    dids = t["did"].to_pylist()
    return {int(name[1:]): dict(zip(dids, t[name].to_pylist())) for name in t.column_names if name != "did"}


def load_previous(path: str | os.PathLike[str]) -> Previous:
    """A previous build's personas (``build --personas-from``): its users' vectors and its partitions."""
    work = previous_work_dir(path)
    dids, vectors = read_user_vectors(work / "embed")
    return Previous(work, dids, vectors, read_partitions(work / "cluster"))
