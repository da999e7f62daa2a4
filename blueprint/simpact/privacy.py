"""Privacy: PII scrubbing, relative time, keyed per-thread pseudonyms, removal requests, and the secret.

Every privacy transform of the build lives here; :mod:`blueprint.simpact.export` only
lays the transformed rows out as a dataset.

- Text: every message's text goes through :class:`blueprint.simpact.pii.Scrubber`.
- Time: absolute times become ``relative_integer_time``, the rank of the message in
  time order over the whole dataset (ties broken by the message's record URI, so
  the order is total and the same on every rebuild); the same message has the same
  rank in every thread it appears in. The ranking is done on whole columns
  (:func:`prepare_rows`).
- Users: each DID becomes ``HMAC-SHA256(secret, DID || thread identity)`` in hex (64
  characters). Inside a thread the same user has one pseudonym; across threads the
  pseudonyms are unlinkable without the secret. A secret shorter than 32 bytes is
  refused.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import stat
from collections import Counter
from pathlib import Path
from typing import Iterator, Protocol, Sequence

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from blueprint.actions import ACTION_INDEX, ACTIONS, TEXT_ACTIONS
from blueprint.data import example_id, split_key
from blueprint.errors import BadInputError
from blueprint.simpact.pii import DID_RE, Scrubber, replace_spans

log = logging.getLogger(__name__)

MIN_SECRET_BYTES = 32


def load_secret(path: str | os.PathLike[str]) -> bytes:
    """Read a secret file; refuse one under :data:`MIN_SECRET_BYTES` bytes (surrounding whitespace ignored)."""
    p = Path(path)
    if not p.is_file():
        raise BadInputError("no such secret file", path=p, field="--secret-file")
    secret = p.read_bytes().strip()
    if len(secret) < MIN_SECRET_BYTES:
        raise BadInputError(f"the secret has {len(secret)} bytes; at least {MIN_SECRET_BYTES} are required "
                            "(make one with: python -c 'import secrets; print(secrets.token_hex(32))')",
                            path=p, field="--secret-file")
    return secret


def create_secret(path: str | os.PathLike[str]) -> bytes:
    """Write a new random secret (64 hex characters) with mode 0600 and return it."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_hex(32).encode()
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "wb") as fh:
        fh.write(secret + b"\n")
    return secret


def thread_identity(message_uris: Sequence[str], action: str, time_us: int) -> bytes:
    """The canonical content that identifies a thread: its messages' records, its action and when it happened."""
    return orjson.dumps([list(message_uris), action, time_us])


def pseudonym(secret: bytes, did: str, identity: bytes) -> str:
    """HMAC-SHA256 over (DID, thread identity), 64 hex characters."""
    return hmac.new(secret, did.encode() + b"\x00" + identity, hashlib.sha256).hexdigest()




def read_removal_list(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """DIDs of users who asked to be removed: one per line; blank lines and ``#`` comments are skipped."""
    p = Path(path)
    if not p.is_file():
        raise BadInputError("no such removal list", path=p, field="--remove-dids")
    out = []
    for lineno, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        did = line.split("#", 1)[0].strip()
        if not did:
            continue
        if not DID_RE.fullmatch(did):
            raise BadInputError(f"not a DID: {did[:60]!r}", path=p, line=lineno, field="--remove-dids")
        out.append(did)
    return tuple(sorted(set(out)))


# --- the transforms, on whole tables: ranks, scrubbing, pseudonyms, removals ---------------------------------


class PrivacyCounts(Protocol):
    """What the transforms count, for the export report."""

    dropped: Counter
    removed_messages: int
    pii_replaced: dict[str, int]


def without_removed(table: pa.Table, removed: frozenset[str] | Sequence[str], column: str = "did"
                    ) -> tuple[pa.Table, int]:
    """The rows of ``table`` whose ``column`` is not a removed user's DID, and how many were dropped.

    The one place a removal request drops data: the build's embedding stage (a removed
    user gets no persona) and the export (their threads go) both call it.
    """
    if not removed or not table.num_rows:
        return table, 0
    gone = pc.is_in(table[column], value_set=pa.array(sorted(removed), pa.string()))
    n = int(pc.sum(gone).as_py() or 0)
    return (table.filter(pc.invert(gone)) if n else table), n


def _ranks(times: pa.Array | pa.ChunkedArray, uris: pa.Array | pa.ChunkedArray,
           groups: np.ndarray | None = None) -> np.ndarray:
    """Rank of each message in time order over distinct (time, record URI) pairs, ties by URI.

    With ``groups``, ranks count separately inside each group (a persona cluster).
    URIs become integer codes that keep their sort order (a sorted dictionary), so the
    ranking is numpy sorts rather than a join of strings.
    """
    if not len(times):
        return np.zeros(0, dtype=np.int64)
    u = uris.combine_chunks() if isinstance(uris, pa.ChunkedArray) else uris
    enc = pc.dictionary_encode(u)
    order_of_dict = pc.sort_indices(enc.dictionary).to_numpy()
    code_of_dict = np.empty(len(order_of_dict), dtype=np.int64)
    code_of_dict[order_of_dict] = np.arange(len(order_of_dict))
    codes = code_of_dict[enc.indices.to_numpy(zero_copy_only=False)]
    t = np.asarray(times.to_numpy() if isinstance(times, pa.ChunkedArray) else times.to_numpy(zero_copy_only=False))
    g = np.zeros(len(t), dtype=np.int64) if groups is None else np.asarray(groups, dtype=np.int64)
    order = np.lexsort((codes, t, g))
    gs, ts, cs = g[order], t[order], codes[order]
    new_group = np.r_[True, gs[1:] != gs[:-1]]
    new = new_group | np.r_[True, (ts[1:] != ts[:-1]) | (cs[1:] != cs[:-1])]
    running = np.cumsum(new) - 1
    # subtract the running count at each group's first row: ranks start at 0 in every group
    starts = np.maximum.accumulate(np.where(new_group, np.arange(len(order)), 0))
    ranks = np.empty(len(t), dtype=np.int64)
    ranks[order] = running - running[starts]
    return ranks


class _ScrubCache:
    """Scrubbed texts by text, so a post that is context in many threads is scrubbed once (bounded memory)."""

    def __init__(self, scrubber: Scrubber, counts: Counter, limit: int = 100_000) -> None:
        self.scrubber, self.counts, self.limit = scrubber, counts, limit
        self.done: dict[str, tuple[str, tuple[str, ...]]] = {}

    def __call__(self, text: str | None) -> str | None:
        if text is None:
            return None
        hit = self.done.get(text)
        if hit is None:
            spans = self.scrubber.spans(text)
            hit = (replace_spans(text, spans) if spans else text, tuple(s.type for s in spans))
            if len(self.done) >= self.limit:
                self.done.clear()
            self.done[text] = hit
        for kind in hit[1]:
            self.counts[kind] += 1
        return hit[0]


def _message_columns(threads: pa.Table | Path) -> tuple[pa.ChunkedArray, pa.ChunkedArray]:
    """Every message's time and record URI, in thread order, read without the texts."""
    if isinstance(threads, pa.Table):
        msgs = threads["messages"]
    else:
        leaves = ["messages.list.element.time_us", "messages.list.element.uri"]
        msgs = pq.ParquetFile(threads).read(columns=leaves)["messages"]
    flat = [c.flatten() for c in msgs.chunks]
    return (pa.chunked_array([f.field("time_us") for f in flat], pa.int64()),
            pa.chunked_array([f.field("uri") for f in flat], pa.string()))


def _batches(threads: pa.Table | Path, size: int) -> Iterator[pa.RecordBatch]:
    if isinstance(threads, pa.Table):
        yield from threads.to_batches(max_chunksize=size)
    else:
        yield from pq.ParquetFile(threads).iter_batches(batch_size=size)


def _actions_struct(last: np.ndarray, action_idx: np.ndarray) -> pa.StructArray:
    """The 13 flags on last messages, null elsewhere."""
    fields = []
    for j, name in enumerate(ACTIONS):
        fields.append(pa.array(action_idx == j, pa.bool_()))
    return pa.StructArray.from_arrays(fields, names=list(ACTIONS), mask=pa.array(~last))


REMOVED = "<REMOVED>"


def prepare_rows(threads: pa.Table | str | os.PathLike[str], secret: bytes, scrubber: Scrubber,
                 report: "PrivacyCounts", removed: frozenset[str] = frozenset(), keep_times: bool = False,
                 clustered: frozenset[str] | None = None) -> pa.Table:
    """Apply the privacy transforms to every thread; return rows without ``cluster_id``.

    Threads whose actor asked to be removed, or (with ``clustered``) has no persona,
    are dropped batch by batch and counted in ``report.dropped``; ranks and ids are
    computed over every thread first, so dropping some changes nothing for the others.

    ``threads`` is the threads table or its Parquet file; a file is read a batch at a
    time, so memory holds the output and one batch, not the input too. Extra columns,
    dropped before writing: ``did`` (the actor, to join clusters and removals) and, with
    ``keep_times``, ``_times``/``_uris`` (per message, to rank time inside clusters), and
    ``split_key`` (:func:`blueprint.data.split_key`, what the split is drawn from).
    Messages by users in ``removed`` have their text replaced by ``<REMOVED>``.
    """
    source = threads if isinstance(threads, pa.Table) else Path(threads)
    ranks = _ranks(*_message_columns(source))
    pii_counts: Counter = Counter()
    scrub = _ScrubCache(scrubber, pii_counts)
    clustered_sorted = sorted(clustered) if clustered is not None else []
    parts = []
    pos = 0
    for batch in _batches(source, _BATCH):
        n = int(pc.sum(pc.list_value_length(batch.column("messages"))).as_py() or 0)
        part = _prepare_batch(pa.Table.from_batches([batch]), ranks[pos : pos + n], secret, scrub, report,
                              removed, keep_times)
        pos += n
        part, n_gone = without_removed(part, removed)
        if n_gone:
            report.dropped["removal_request"] += n_gone
        if clustered is not None:
            has = pc.is_in(part["did"], value_set=pa.array(clustered_sorted, pa.string()))
            lost = int(pc.sum(pc.invert(has)).as_py() or 0)
            if lost:
                report.dropped["actor_without_persona"] += lost
                part = part.filter(has)
        parts.append(part)
    report.pii_replaced = dict(sorted(pii_counts.items()))
    if not parts:
        raise BadInputError("no threads to export", field="threads")
    rows = pa.concat_tables(parts)
    if pc.count_distinct(rows["id"]).as_py() != rows.num_rows:  # pragma: no cover - ranks are unique per message
        raise RuntimeError("example ids are not unique")
    return rows


def _prepare_batch(threads: pa.Table, ranks: np.ndarray, secret: bytes, scrub: _ScrubCache, report: "PrivacyCounts",
                   removed: frozenset[str], keep_times: bool) -> pa.Table:
    msgs = threads["messages"].combine_chunks()
    offsets = msgs.offsets.to_numpy() - msgs.offsets[0].as_py()
    flat = msgs.flatten()
    n_msgs = len(flat)
    actions = threads["action"].to_pylist()
    action_idx_thread = np.array([ACTION_INDEX[a] for a in actions], dtype=np.int64)
    thread_of_msg = np.repeat(np.arange(len(actions)), np.diff(offsets))
    last = np.zeros(n_msgs, dtype=bool)
    last[offsets[1:] - 1] = True
    # the last message carries text only for text actions (a like's message has none)
    text_action = np.array([a in TEXT_ACTIONS for a in actions])
    keep_text = ~last | text_action[thread_of_msg]
    dids = flat.field("did").to_pylist()
    uris = flat.field("uri").to_pylist()
    raw_texts = flat.field("text").to_pylist()
    text_list: list[str | None] = []
    for j, t in enumerate(raw_texts):
        if not keep_text[j] or t is None:
            text_list.append(None)
        elif dids[j] in removed:
            report.removed_messages += 1
            text_list.append(REMOVED)
        else:
            text_list.append(scrub(t))
    times = threads["time_us"].to_pylist()
    user_ids: list[str] = [""] * n_msgs
    ids: list[str] = []
    keys: list[str] = []
    targets: list[str | None] = []
    for i, action in enumerate(actions):
        a, b = int(offsets[i]), int(offsets[i + 1])
        ident = thread_identity(uris[a:b], action, times[i])
        for j in range(a, b):
            user_ids[j] = pseudonym(secret, dids[j], ident)
        # from the raw identity: scrubbing and removals never move an example's id or split
        ids.append(example_id(ident, secret))
        keys.append(split_key(ident))
        targets.append(text_list[b - 1])
    message_struct = pa.StructArray.from_arrays(
        [pa.array(user_ids, pa.string()), pa.array(text_list, pa.string()), pa.array(ranks, pa.int64()),
         _actions_struct(last, action_idx_thread[thread_of_msg])],
        names=["user_id", "text", "relative_integer_time", "actions"])
    off = pa.array(offsets, pa.int32())
    columns = {
        "id": pa.array(ids, pa.string()),
        "thread": pa.ListArray.from_arrays(off, message_struct),
        "action": pa.array(action_idx_thread, pa.int64()),
        "target_text": pa.array(targets, pa.string()),
        "did": threads["did"].combine_chunks(),
        "split_key": pa.array(keys, pa.string()),
    }
    if keep_times:
        columns["_times"] = pa.ListArray.from_arrays(off, flat.field("time_us"))
        columns["_uris"] = pa.ListArray.from_arrays(off, flat.field("uri"))
    return pa.table(columns)


_BATCH = 50_000


def with_cluster_ranks(rows: pa.Table, cid: np.ndarray) -> pa.ChunkedArray:
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
