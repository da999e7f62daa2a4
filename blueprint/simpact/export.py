"""Export: threads + personas -> a dataset directory that ``datasets`` loads with no script.

Layout::

    DATASET_DIR/README.md                                   the dataset card, with configs: and dataset_info: YAML
    DATASET_DIR/data/<config>/<split>-<build fingerprint>-NNNNN-of-NNNNN.parquet
    DATASET_DIR/blueprint_manifest.json                     rows per config and split, the build's settings

Configs: ``{k}_clusters`` for every partition, and ``{k}_clusters_c{i}`` for each
cluster of partitions with at most :data:`MAX_PER_CLUSTER_K` clusters.

The privacy transforms happen here, on whole columns: texts are scrubbed once per
distinct text, times become global ranks, and user ids become per-thread HMAC
pseudonyms. Nothing raw reaches the directory: no DID, no absolute time.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from blueprint._io import atomic_dir, write_json, write_jsonl
from blueprint.actions import ACTIONS
from blueprint.data import DEFAULT_FRACTIONS, SPLITS, check_fractions, config_name, features, split_of
from blueprint.errors import BadInputError
from blueprint.simpact.pii import Scrubber
from blueprint.simpact.privacy import prepare_rows, with_cluster_ranks

log = logging.getLogger(__name__)

MAX_PER_CLUSTER_K = 100
MANIFEST = "blueprint_manifest.json"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ExportConfig:
    """How the dataset directory is laid out, and how time is released.

    ``time_mode``: ``global`` ranks messages over the whole dataset (the paper);
    ``cluster`` ranks them inside each persona cluster of each partition. Ids and
    splits use the global ranks either way, so they do not depend on the mode.
    """

    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS
    shard_rows: int = 200_000
    per_cluster_max_k: int = MAX_PER_CLUSTER_K
    time_mode: str = "global"

    def __post_init__(self) -> None:
        check_fractions(self.fractions)
        if self.shard_rows < 1:
            raise BadInputError(f"must be at least 1, got {self.shard_rows}", field="shard_rows")
        if self.time_mode not in ("global", "cluster"):
            raise BadInputError(f"must be 'global' or 'cluster', got {self.time_mode!r}", field="time_mode")


@dataclass
class ExportReport:
    rows: int = 0
    dropped: Counter = field(default_factory=Counter)
    removed_messages: int = 0
    configs: dict[str, dict[str, int]] = field(default_factory=dict)
    actions: dict[str, int] = field(default_factory=dict)
    pii_replaced: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"rows": self.rows, "dropped": dict(sorted(self.dropped.items())),
                "removed_messages": self.removed_messages, "configs": self.configs,
                "actions": self.actions, "pii_replaced": self.pii_replaced}


def hide_labels(table: pa.Table) -> pa.Table:
    """Rows without their labels: the last message's text and actions null, ``action`` -1, no ``target_text``."""
    thread = table["thread"].combine_chunks()
    offsets = thread.offsets.to_numpy()
    msgs = thread.flatten()
    last = np.zeros(len(msgs), dtype=bool)
    last[offsets[1:] - 1] = True
    hidden = pa.array(last)
    text = pc.if_else(hidden, pa.scalar(None, pa.string()), msgs.field("text"))
    actions = msgs.field("actions")
    actions = pa.StructArray.from_arrays([actions.field(a) for a in ACTIONS], names=list(ACTIONS),
                                         mask=pa.array(last | ~actions.is_valid().to_numpy(zero_copy_only=False)))
    struct = pa.StructArray.from_arrays([msgs.field("user_id"), text, msgs.field("relative_integer_time"), actions],
                                        names=["user_id", "text", "relative_integer_time", "actions"])
    out = table.set_column(table.schema.get_field_index("thread"), "thread",
                           pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), struct))
    out = out.set_column(out.schema.get_field_index("action"), "action",
                         pa.array(np.full(out.num_rows, -1, dtype=np.int64)))
    return out.set_column(out.schema.get_field_index("target_text"), "target_text",
                          pa.nulls(out.num_rows, pa.string()))


class _ShardWriter:
    """Rows of one config and split into ``<split>-<build fingerprint>-NNNNN-of-NNNNN.parquet`` files."""

    def __init__(self, folder: Path, split: str, total: int, shard_rows: int, schema: pa.Schema,
                 fingerprint: str) -> None:
        self.folder, self.split, self.shard_rows, self.schema = folder, split, shard_rows, schema
        self.fingerprint = fingerprint
        self.n_shards = max(1, -(-total // shard_rows))
        self.shard = 0
        self.in_shard = 0
        self.writer: pq.ParquetWriter | None = None

    def _open(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{self.split}-{self.fingerprint}-{self.shard:05d}-of-{self.n_shards:05d}.parquet"
        self.writer = pq.ParquetWriter(self.folder / name, self.schema, compression="zstd")

    def write(self, table: pa.Table) -> None:
        while table.num_rows:
            if self.writer is None:
                self._open()
            room = self.shard_rows - self.in_shard
            part, table = table.slice(0, room), table.slice(room)
            self.writer.write_table(part.cast(self.schema))
            self.in_shard += part.num_rows
            if self.in_shard == self.shard_rows:
                self.writer.close()
                self.writer, self.shard, self.in_shard = None, self.shard + 1, 0

    def close(self) -> None:
        if self.writer is None and self.shard == 0:  # an empty split still gets its (empty) file
            self._open()
        if self.writer is not None:
            self.writer.close()
            self.writer = None


_WRITE_CHUNK = 20_000


def _write_partition(full: pa.Table, out: Path, k: int, cid: np.ndarray, splits: np.ndarray, schema: pa.Schema,
                     cfg: "ExportConfig", hold_out: bool, fingerprint: str) -> dict[str, dict[str, int]]:
    """Write ``{k}_clusters`` and, for small k, every ``{k}_clusters_c{i}``, in one pass over the rows.

    Rows go out a chunk at a time, so memory holds one chunk's copies, not a copy per config.
    """
    per_cluster = k <= cfg.per_cluster_max_k
    names = [config_name(k)] + ([config_name(k, c) for c in range(k)] if per_cluster else [])
    counts = {name: {s: 0 for s in SPLITS} for name in names}
    for split in SPLITS:
        m = splits == split
        counts[config_name(k)][split] = int(m.sum())
        if per_cluster:
            for c, n in zip(*np.unique(cid[m], return_counts=True)):
                counts[config_name(k, int(c))][split] = int(n)
    writers = {(name, split): _ShardWriter(out / "data" / name, split, counts[name][split], cfg.shard_rows, schema,
                                           fingerprint)
               for name in names for split in SPLITS}
    for start in range(0, full.num_rows, _WRITE_CHUNK):
        chunk = full.slice(start, _WRITE_CHUNK)
        sp = splits[start : start + _WRITE_CHUNK]
        cc = cid[start : start + _WRITE_CHUNK]
        for split in SPLITS:
            m = np.flatnonzero(sp == split)
            if not len(m):
                continue
            # stable order by cluster: each cluster's rows are then one slice
            order = m[np.argsort(cc[m], kind="stable")]
            sub = chunk.take(pa.array(order))
            if hold_out and split == "test":
                sub = hide_labels(sub)
            writers[(config_name(k), split)].write(sub.take(pa.array(np.argsort(order, kind="stable"))))
            if per_cluster:
                sorted_c = cc[order]
                bounds = np.flatnonzero(np.diff(sorted_c)) + 1
                for a, b in zip(np.r_[0, bounds], np.r_[bounds, len(order)]):
                    writers[(config_name(k, int(sorted_c[a])), split)].write(sub.slice(a, b - a))
    for w in writers.values():
        w.close()
    return counts


def export(threads: pa.Table | str | os.PathLike[str], partitions: Mapping[int, Mapping[str, int]], out_dir: str | os.PathLike[str],
           *, secret: bytes, config: ExportConfig | None = None, scrubber: Scrubber | None = None,
           card_context: Mapping[str, Any] | None = None,
           user_vectors: tuple[Sequence[str], np.ndarray] | None = None, seed: int = 0,
           remove_dids: Sequence[str] = (), labels_path: str | os.PathLike[str] | None = None) -> ExportReport:
    """Write the dataset directory. ``partitions[k][did]`` is the cluster of user ``did`` in partition k.

    Threads whose last author is in ``remove_dids`` are dropped; those users' messages in
    other threads read ``<REMOVED>``. With ``user_vectors`` (DIDs and their embeddings), the cluster report goes to
    ``reports/`` inside the directory and the card links it. With ``labels_path``, the
    ``test`` split is released without its labels (the last message's text and actions,
    ``action`` = -1, ``target_text``), which go to that file, outside the directory, for
    a leaderboard with hidden labels. The directory is built
    in a temporary sibling and renamed into place, so a failed export never leaves a
    half-written dataset.
    """
    from blueprint.simpact.card import render_card

    cfg = config or ExportConfig()
    out_dir = Path(out_dir)
    report = ExportReport()
    if labels_path is not None:
        labels_path = Path(labels_path)
        if out_dir.resolve() == labels_path.resolve().parent or out_dir.resolve() in labels_path.resolve().parents:
            raise BadInputError("the labels file must be outside the dataset directory", path=labels_path,
                                field="--hold-out-labels")
    if not partitions:
        raise BadInputError("no partitions to export", field="partitions")
    if isinstance(threads, pa.Table) and threads.num_rows == 0:
        raise BadInputError("no threads to export", field="threads")
    removed = frozenset(remove_dids)
    # ranks and ids come from every thread, before any is dropped, so that dropping some
    # (a removal request, say) changes nothing for the others
    clustered = frozenset(next(iter(partitions.values())).keys())
    rows = prepare_rows(threads, secret, scrubber or Scrubber(), report, removed,
                        keep_times=cfg.time_mode == "cluster", clustered=clustered)
    n_removed = report.dropped.get("removal_request", 0)
    report.rows = rows.num_rows
    if rows.num_rows == 0:
        raise BadInputError("no threads left to export (no in-scope actor has a persona)", field="threads")
    splits = np.array([split_of(k, cfg.fractions) for k in rows["split_key"].to_pylist()])
    schema = features().arrow_schema
    body = rows.drop_columns(["did", "split_key"])

    thread_clusters = {k: _cluster_ids(rows["did"], partitions[k]) for k in sorted(partitions)}
    fingerprint = build_fingerprint(rows["id"], thread_clusters, cfg, labels_path is not None)

    with atomic_dir(out_dir) as tmp:
        configs: dict[str, dict[str, int]] = {}
        cluster_sizes: dict[str, dict[int, int]] = {}
        for k in sorted(partitions):
            cid = thread_clusters[k]
            part = body if cfg.time_mode == "global" else body.set_column(
                body.schema.get_field_index("thread"), "thread", with_cluster_ranks(body, cid))
            full = part.add_column(2, "cluster_id", pa.array(cid, pa.int64())).select(schema.names)
            configs.update(_write_partition(full, tmp, k, cid, splits, schema, cfg, labels_path is not None,
                                            fingerprint))
            cluster_sizes[config_name(k)] = {int(c): int(n) for c, n in zip(*np.unique(cid, return_counts=True))}
        report.configs = configs
        report.actions = {a: int(n) for a, n in zip(ACTIONS, np.bincount(body["action"].to_numpy(), minlength=13))}
        reports_written = []
        if user_vectors is not None:
            from blueprint.simpact.report import write_cluster_reports

            write_cluster_reports(tmp / "reports", dids=list(user_vectors[0]), vectors=user_vectors[1],
                                  partitions=partitions, thread_clusters=thread_clusters,
                                  thread_actions=body["action"].to_numpy(), thread_texts=body["target_text"],
                                  seed=seed)
            reports_written = sorted(partitions)
        manifest = {
            "format_version": FORMAT_VERSION,
            "build_fingerprint": fingerprint,
            "rows": report.rows,
            "partitions": sorted(partitions),
            "fractions": list(cfg.fractions),
            "configs": configs,
            "actions": report.actions,
            "cluster_sizes_in_threads": cluster_sizes,
            "users_per_cluster": {config_name(k): _users_per_cluster(partitions[k]) for k in sorted(partitions)},
            "dropped": dict(report.dropped),
            "removal": {"dids_listed": len(removed), "threads_dropped": n_removed,
                        "messages_replaced": report.removed_messages},
            "time_mode": cfg.time_mode,
            "test_labels_hidden": labels_path is not None,
            "pii_replaced": report.pii_replaced,
            "cluster_reports": [f"reports/clusters_{k}.json" for k in reports_written],
        }
        if labels_path is not None:
            _write_labels(labels_path, body, splits, thread_clusters)
        write_json(tmp / MANIFEST, manifest)
        (tmp / "README.md").write_text(render_card(manifest, card_context or {}), encoding="utf-8")
    return report


def build_fingerprint(ids: pa.ChunkedArray, thread_clusters: Mapping[int, np.ndarray], cfg: "ExportConfig",
                      hold_out: bool) -> str:
    """12 hex characters that change with anything the released rows hold: ids, personas, time mode, labels."""
    h = hashlib.sha256()
    for chunk in ids.chunks:
        h.update(b"\n".join(x.encode() for x in chunk.to_pylist()))
    for k in sorted(thread_clusters):
        h.update(f"|k={k}|".encode() + np.ascontiguousarray(thread_clusters[k], dtype=np.int64).tobytes())
    h.update(f"|{cfg.time_mode}|{list(cfg.fractions)}|{hold_out}|{FORMAT_VERSION}".encode())
    return h.hexdigest()[:12]


def _cluster_ids(dids: pa.ChunkedArray, labels: Mapping[str, int]) -> np.ndarray:
    """The cluster of each row's actor, without a Python object per row."""
    keys = sorted(labels)
    idx = pc.index_in(dids, value_set=pa.array(keys, pa.string())).to_numpy(zero_copy_only=False)
    return np.asarray([labels[k] for k in keys], dtype=np.int64)[idx.astype(np.int64)]


def _write_labels(path: Path, body: pa.Table, splits: np.ndarray, thread_clusters: Mapping[int, np.ndarray]) -> None:
    """The hidden test labels: id, action, target text, and the cluster in every partition."""
    test = np.flatnonzero(splits == "test")
    ids = body["id"].to_pylist()
    actions = body["action"].to_numpy()
    texts = body["target_text"].to_pylist()
    write_jsonl(path, ({"id": ids[i], "action": ACTIONS[actions[i]], "text": texts[i],
                        "clusters": {config_name(k): int(c[i]) for k, c in sorted(thread_clusters.items())}}
                       for i in test))


def _users_per_cluster(labels: Mapping[str, int]) -> dict[int, int]:
    c = Counter(labels.values())
    return {int(k): int(v) for k, v in sorted(c.items())}


def read_manifest(dataset_dir: str | os.PathLike[str]) -> dict:
    from blueprint._io import read_json

    p = Path(dataset_dir) / MANIFEST
    if not p.is_file():
        raise BadInputError(f"not a BluePrint dataset directory (no {MANIFEST})", path=dataset_dir)
    return read_json(p)
