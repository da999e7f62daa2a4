"""Export: threads + personas -> a dataset directory that ``datasets`` loads with no script.

Layout::

    DATASET_DIR/README.md                                   the dataset card, with configs: and dataset_info: YAML
    DATASET_DIR/data/<config>/<split>-NNNNN-of-NNNNN.parquet
    DATASET_DIR/blueprint_manifest.json                     rows per config and split, the build's settings

Configs: ``{k}_clusters`` for every partition, and ``{k}_clusters_c{i}`` for each
cluster of partitions with at most :data:`MAX_PER_CLUSTER_K` clusters.

The privacy transforms happen here, on whole columns: texts are scrubbed once per
distinct text, times become global ranks, and user ids become per-thread HMAC
pseudonyms. Nothing raw reaches the directory: no DID, no absolute time.
"""

from __future__ import annotations

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
from blueprint.actions import ACTION_INDEX, ACTIONS, TEXT_ACTIONS
from blueprint.data import DEFAULT_FRACTIONS, SPLITS, check_fractions, config_name, content_id, features, split_of
from blueprint.errors import BadInputError
from blueprint.simpact.pii import Scrubber, replace_spans
from blueprint.simpact.privacy import pseudonym, thread_identity

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


def _ranks(times: pa.Array, uris: pa.Array, groups: np.ndarray | None = None) -> np.ndarray:
    """Rank of each message in time order over the distinct (time, record) pairs, ties by record URI.

    With ``groups``, ranks count separately inside each group (a persona cluster).
    """
    n = len(times)
    g = pa.array(np.zeros(n, dtype=np.int64) if groups is None else groups, pa.int64())
    t = pa.table({"g": g, "t": times, "u": uris, "i": pa.array(np.arange(n, dtype=np.int64))})
    uniq = t.group_by(["g", "t", "u"]).aggregate([]).sort_by(
        [("g", "ascending"), ("t", "ascending"), ("u", "ascending")])
    gcol = uniq["g"].to_numpy()
    pos = np.arange(len(gcol), dtype=np.int64)
    starts = np.r_[0, np.flatnonzero(np.diff(gcol)) + 1] if len(gcol) else np.zeros(0, dtype=np.int64)
    first = np.repeat(starts, np.diff(np.r_[starts, len(gcol)])) if len(gcol) else pos
    uniq = uniq.append_column("rank", pa.array(pos - first, pa.int64()))
    return t.join(uniq, keys=["g", "t", "u"]).sort_by("i")["rank"].to_numpy()


def _scrub_column(texts: pa.Array, scrubber: Scrubber, counts: Counter) -> pa.Array:
    """Scrub each distinct text once and map the results back."""
    uniq = pc.unique(texts).drop_null()
    scrubbed = []
    for t in uniq.to_pylist():
        spans = scrubber.spans(t)
        for s in spans:
            counts[s.type] += 1
        scrubbed.append(replace_spans(t, spans) if spans else t)
    idx = pc.index_in(texts, value_set=uniq)
    return pa.array(scrubbed, pa.string()).take(idx)


def _actions_struct(last: np.ndarray, action_idx: np.ndarray) -> pa.StructArray:
    """The 13 flags on last messages, null elsewhere."""
    fields = []
    for j, name in enumerate(ACTIONS):
        fields.append(pa.array(action_idx == j, pa.bool_()))
    return pa.StructArray.from_arrays(fields, names=list(ACTIONS), mask=pa.array(~last))


REMOVED = "<REMOVED>"


def prepare_rows(threads: pa.Table, secret: bytes, scrubber: Scrubber, report: ExportReport,
                 removed: frozenset[str] = frozenset()) -> pa.Table:
    """Apply the privacy transforms to every thread; return rows without ``cluster_id``.

    Extra columns, dropped before writing: ``did`` (the actor, to join clusters and
    removals) and ``_times``/``_uris`` (per message, to rank time inside clusters).
    Messages by users in ``removed`` have their text replaced by ``<REMOVED>``.
    """
    msgs = threads["messages"].combine_chunks()
    offsets = msgs.offsets.to_numpy()
    flat = msgs.flatten()
    n_msgs = len(flat)
    ranks = _ranks(flat.field("time_us"), flat.field("uri"))
    pii_counts: Counter = Counter()
    texts = _scrub_column(flat.field("text"), scrubber, pii_counts)
    report.pii_replaced = dict(sorted(pii_counts.items()))
    if removed:
        gone = pc.is_in(flat.field("did"), value_set=pa.array(sorted(removed), pa.string()))
        gone = pc.and_(gone, pc.is_valid(texts))
        report.removed_messages = int(pc.sum(gone).as_py() or 0)
        texts = pc.if_else(gone, pa.scalar(REMOVED, pa.string()), texts)

    actions = threads["action"].to_pylist()
    action_idx_thread = np.array([ACTION_INDEX[a] for a in actions], dtype=np.int64)
    lengths = np.diff(offsets)
    thread_of_msg = np.repeat(np.arange(len(actions)), lengths)
    last = np.zeros(n_msgs, dtype=bool)
    last[offsets[1:] - 1] = True
    # the last message carries text only for text actions (a like's message has none)
    text_action = np.array([a in TEXT_ACTIONS for a in actions])
    keep_text = ~last | text_action[thread_of_msg]
    texts = pc.if_else(pa.array(keep_text), texts, pa.scalar(None, pa.string()))

    dids = flat.field("did").to_pylist()
    uris = flat.field("uri").to_pylist()
    times = threads["time_us"].to_pylist()
    text_list = texts.to_pylist()
    user_ids: list[str] = [""] * n_msgs
    ids: list[str] = []
    targets: list[str | None] = []
    for i, action in enumerate(actions):
        a, b = offsets[i], offsets[i + 1]
        ident = thread_identity(uris[a:b], action, times[i])
        for j in range(a, b):
            user_ids[j] = pseudonym(secret, dids[j], ident)
        ex_id = content_id(action, list(zip(ranks[a:b].tolist(), text_list[a:b])), secret)
        ids.append(ex_id)
        targets.append(text_list[b - 1])
    if len(set(ids)) != len(ids):  # pragma: no cover - ranks are unique per message
        raise RuntimeError("example ids are not unique")

    message_struct = pa.StructArray.from_arrays(
        [pa.array(user_ids, pa.string()), texts, pa.array(ranks, pa.int64()),
         _actions_struct(last, action_idx_thread[thread_of_msg])],
        names=["user_id", "text", "relative_integer_time", "actions"])
    thread_col = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), message_struct)
    return pa.table({
        "id": pa.array(ids, pa.string()),
        "thread": thread_col,
        "action": pa.array(action_idx_thread, pa.int64()),
        "target_text": pa.array(targets, pa.string()),
        "did": threads["did"],
        "_times": pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), flat.field("time_us")),
        "_uris": pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), flat.field("uri")),
    })


def _with_cluster_ranks(rows: pa.Table, cid: np.ndarray) -> pa.ChunkedArray:
    """The thread column with ``relative_integer_time`` ranked inside each thread's cluster."""
    thread = rows["thread"].combine_chunks()
    offsets = thread.offsets
    msgs = thread.flatten()
    times = rows["_times"].combine_chunks().flatten()
    uris = rows["_uris"].combine_chunks().flatten()
    groups = np.repeat(cid, np.diff(offsets.to_numpy()))
    ranks = _ranks(times, uris, groups)
    fields = [msgs.field(n) for n in ("user_id", "text")] + [pa.array(ranks, pa.int64()), msgs.field("actions")]
    struct = pa.StructArray.from_arrays(fields, names=["user_id", "text", "relative_integer_time", "actions"])
    return pa.chunked_array([pa.ListArray.from_arrays(offsets, struct)])


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


def _write_config(table: pa.Table, out: Path, name: str, splits: np.ndarray, schema: pa.Schema,
                  shard_rows: int, hold_out: bool = False) -> dict[str, int]:
    counts = {}
    for split in SPLITS:
        part = table.filter(pa.array(splits == split))
        if hold_out and split == "test":
            part = hide_labels(part)
        counts[split] = part.num_rows
        n_shards = max(1, -(-part.num_rows // shard_rows))
        d = out / "data" / name
        d.mkdir(parents=True, exist_ok=True)
        for s in range(n_shards):
            chunk = part.slice(s * shard_rows, shard_rows).cast(schema)
            pq.write_table(chunk, d / f"{split}-{s:05d}-of-{n_shards:05d}.parquet", compression="zstd")
    return counts


def export(threads: pa.Table, partitions: Mapping[int, Mapping[str, int]], out_dir: str | os.PathLike[str],
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
    if threads.num_rows == 0:
        raise BadInputError("no threads to export", field="threads")
    removed = frozenset(remove_dids)
    # ranks and ids come from every thread, before any is dropped, so that dropping some
    # (a removal request, say) changes nothing for the others
    rows = prepare_rows(threads, secret, scrubber or Scrubber(), report, removed)
    clustered = pa.array(sorted(next(iter(partitions.values())).keys()), pa.string())
    removal = pc.is_in(rows["did"], value_set=pa.array(sorted(removed), pa.string()))
    has_cluster = pc.is_in(rows["did"], value_set=clustered)
    n_removed = int(pc.sum(removal).as_py() or 0)
    n_unclustered = int(pc.sum(pc.and_(pc.invert(removal), pc.invert(has_cluster))).as_py() or 0)
    if n_removed:
        report.dropped["removal_request"] = n_removed
    if n_unclustered:
        report.dropped["actor_without_persona"] = n_unclustered
    rows = rows.filter(pc.and_(pc.invert(removal), has_cluster))
    report.rows = rows.num_rows
    if rows.num_rows == 0:
        raise BadInputError("no threads left to export (no in-scope actor has a persona)", field="threads")
    splits = np.array([split_of(i, cfg.fractions) for i in rows["id"].to_pylist()])
    schema = features().arrow_schema
    actor = rows["did"].to_pylist()
    body = rows.drop_columns(["did"])

    with atomic_dir(out_dir) as tmp:
        configs: dict[str, dict[str, int]] = {}
        cluster_sizes: dict[str, dict[int, int]] = {}
        thread_clusters: dict[int, np.ndarray] = {}
        for k in sorted(partitions):
            labels = partitions[k]
            cid = np.array([labels[d] for d in actor], dtype=np.int64)
            thread_clusters[k] = cid
            part = body if cfg.time_mode == "global" else body.set_column(
                body.schema.get_field_index("thread"), "thread", _with_cluster_ranks(body, cid))
            full = part.add_column(2, "cluster_id", pa.array(cid, pa.int64())).select(schema.names)
            hold = labels_path is not None
            configs[config_name(k)] = _write_config(full, tmp, config_name(k), splits, schema, cfg.shard_rows, hold)
            cluster_sizes[config_name(k)] = {int(c): int(n) for c, n in zip(*np.unique(cid, return_counts=True))}
            if k <= cfg.per_cluster_max_k:
                for c in range(k):
                    mask = cid == c
                    configs[config_name(k, c)] = _write_config(
                        full.filter(pa.array(mask)), tmp, config_name(k, c), splits[mask], schema, cfg.shard_rows,
                        hold)
        report.configs = configs
        report.actions = {a: int(n) for a, n in zip(ACTIONS, np.bincount(body["action"].to_numpy(), minlength=13))}
        reports_written = []
        if user_vectors is not None:
            from blueprint.simpact.report import write_cluster_reports

            write_cluster_reports(tmp / "reports", dids=list(user_vectors[0]), vectors=user_vectors[1],
                                  partitions=partitions, thread_clusters=thread_clusters,
                                  thread_actions=body["action"].to_numpy(), thread_texts=body["target_text"].to_pylist(),
                                  seed=seed)
            reports_written = sorted(partitions)
        manifest = {
            "format_version": FORMAT_VERSION,
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
