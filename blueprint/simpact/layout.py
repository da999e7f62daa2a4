"""Laying released rows out as a dataset directory: one config per partition and per persona, sharded by split.

``data/<config>/<split>-<build fingerprint>-NNNNN-of-NNNNN.parquet``. Rows arrive a
chunk at a time from the export's scratch file and go to every config they belong to
in one pass; a test split with hidden labels is written without them
(:func:`hide_labels`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from blueprint.actions import ACTIONS
from blueprint.data import SPLITS, config_name
from blueprint.simpact.privacy import Take, cluster_ranks, with_ranks

if TYPE_CHECKING:
    from blueprint.simpact.config import ExportConfig


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
            writer = self.writer
            assert writer is not None  # opened above
            room = self.shard_rows - self.in_shard
            part, table = table.slice(0, room), table.slice(room)
            writer.write_table(part.cast(self.schema))
            self.in_shard += part.num_rows
            if self.in_shard == self.shard_rows:
                writer.close()
                self.writer, self.shard, self.in_shard = None, self.shard + 1, 0

    def close(self) -> None:
        if self.writer is None and self.shard == 0:  # an empty split still gets its (empty) file
            self._open()
        if self.writer is not None:
            self.writer.close()
            self.writer = None


_WRITE_CHUNK = 20_000


def exact_chunks(path: Path, size: int) -> Iterator[pa.Table]:
    """The rows of a Parquet file in tables of exactly ``size`` rows (the last may be shorter)."""
    pending: list[pa.RecordBatch] = []
    have = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=size):
        pending.append(batch)
        have += batch.num_rows
        while have >= size:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, size).combine_chunks()
            rest = table.slice(size)
            pending, have = rest.to_batches(), rest.num_rows
    if have:
        yield pa.Table.from_batches(pending).combine_chunks()


def partition_chunks(prepared: Path, k: int, cid: np.ndarray, schema: pa.Schema, cfg: ExportConfig
                      ) -> Iterator[pa.Table]:
    """The released rows of partition ``k``, a chunk at a time: ``cluster_id`` added, times ranked per cluster
    when ``time_mode`` is ``cluster``."""
    ranks = Take(cluster_ranks(prepared, cid)) if cfg.time_mode == "cluster" else None
    pos = 0
    for chunk in exact_chunks(prepared, _WRITE_CHUNK):
        if ranks is not None:
            chunk = with_ranks(chunk, ranks(int(pc.sum(pc.list_value_length(chunk["thread"])).as_py() or 0)))
        n = chunk.num_rows
        yield chunk.append_column("cluster_id", pa.array(cid[pos : pos + n], pa.int64())).select(schema.names)
        pos += n


def write_partition(chunks: Iterator[pa.Table], out: Path, k: int, cid: np.ndarray, splits: np.ndarray,
                     schema: pa.Schema, cfg: ExportConfig, hold_out: bool, fingerprint: str
                     ) -> dict[str, dict[str, int]]:
    """Write ``{k}_clusters`` and, for small k, every ``{k}_clusters_c{i}``, in one pass over the rows.

    Rows come a chunk at a time, so memory holds one chunk's copies, not a copy per config.
    """
    per_cluster = k <= cfg.per_cluster_max_k
    names = [config_name(k)] + ([config_name(k, c) for c in range(k)] if per_cluster else [])
    counts = {name: {s: 0 for s in SPLITS} for name in names}
    for code, split in enumerate(SPLITS):
        m = splits == code
        counts[config_name(k)][split] = int(m.sum())
        if per_cluster:
            for c, n in zip(*np.unique(cid[m], return_counts=True)):
                counts[config_name(k, int(c))][split] = int(n)
    writers = {(name, split): _ShardWriter(out / "data" / name, split, counts[name][split], cfg.shard_rows, schema,
                                           fingerprint)
               for name in names for split in SPLITS}
    start = 0
    for chunk in chunks:
        sp = splits[start : start + chunk.num_rows]
        cc = cid[start : start + chunk.num_rows]
        start += chunk.num_rows
        for code, split in enumerate(SPLITS):
            m = np.flatnonzero(sp == code)
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

