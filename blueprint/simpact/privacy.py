"""Privacy: PII scrubbing, relative time, keyed per-thread pseudonyms, removal requests, and the secret.

Every privacy transform of the build lives here; :mod:`blueprint.simpact.export` only
lays the transformed rows out as a dataset.

- Text: every message's text goes through :class:`blueprint.pii.Scrubber`.
- Time: absolute times become ``relative_integer_time``, the rank of the message in
  time order over the whole dataset (ties broken by the message's record URI, so
  the order is total and the same on every rebuild); the same message has the same
  rank in every thread it appears in. DuckDB does the ranking out of core
  (:func:`message_ranks`), and :func:`prepare_rows` transforms a batch at a time.
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
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from blueprint.actions import ACTION_INDEX, ACTIONS, TEXT_ACTIONS
from blueprint.atproto import read_did_file
from blueprint.data import example_id, split_key
from blueprint.errors import BadInputError
from blueprint.pii import Scrubber, replace_spans

log = logging.getLogger(__name__)

MIN_SECRET_BYTES = 32


def load_secret(path: str | os.PathLike[str]) -> bytes:
    """Read a secret file; refuse one under :data:`MIN_SECRET_BYTES` bytes (surrounding whitespace ignored)."""
    p = Path(path)
    if not p.is_file():
        raise BadInputError("no such secret file", path=p, field="secret_file")
    secret = p.read_bytes().strip()
    if len(secret) < MIN_SECRET_BYTES:
        raise BadInputError(f"the secret has {len(secret)} bytes; at least {MIN_SECRET_BYTES} are required "
                            "(make one with: python -c 'import secrets; print(secrets.token_hex(32))')",
                            path=p, field="secret_file")
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
    """DIDs of users who asked to be removed (:func:`read_did_file`), sorted and unique."""
    return tuple(sorted(set(read_did_file(path, field="remove_dids", what="removal list"))))


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


_RANK_SQL = """
    SELECT (dense_rank() OVER (PARTITION BY g ORDER BY t, u) - 1)::BIGINT AS r
    FROM (SELECT row, g, unnest(times) AS t, unnest(uris) AS u, unnest(range(len(times))) AS j FROM ({source}))
    ORDER BY row, j"""


def message_ranks(source: str, tables: Mapping[str, pa.Table] | None = None, *,
                  memory_limit: str = "512MB", temp_dir: str | os.PathLike[str] | None = None
                  ) -> Iterator[np.ndarray]:
    """Each message's rank in time order, over distinct (time, record URI) pairs, ties by URI; in message order.

    ``source`` is a DuckDB query with columns ``row`` (the thread's position), ``g``
    (ranks count separately inside each ``g``: a persona cluster, or one constant),
    ``times`` and ``uris`` (the thread's messages); ``tables`` are Arrow tables it reads.
    The sort spills into a temporary folder in ``temp_dir`` (default: the system's).
    DuckDB sorts out of core, so the ranking holds neither the URIs nor the times in
    Python; the ranks come back a batch at a time, in thread then message order.
    """
    import shutil
    import tempfile

    from blueprint.simpact import duck

    spill = Path(tempfile.mkdtemp(prefix=".ranks-", dir=temp_dir))
    con = duck.connect(temp_directory=spill, memory_limit=memory_limit, ordered=False)  # the query orders its output
    try:
        for name, table in (tables or {}).items():
            con.register(name, table)
        for batch in con.sql(_RANK_SQL.format(source=source)).to_arrow_reader(1 << 16):
            yield batch.column(0).to_numpy()
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)


def _parquet(path: Path) -> str:
    return "read_parquet('" + str(path).replace("'", "''") + "', file_row_number = true)"


class Take:
    """Takes the next ``n`` values from a stream of arrays."""

    def __init__(self, arrays: Iterator[np.ndarray]) -> None:
        self.arrays = arrays
        self.buf = np.zeros(0, dtype=np.int64)

    def __call__(self, n: int) -> np.ndarray:
        parts, have = [self.buf], len(self.buf)
        while have < n:
            nxt = next(self.arrays)
            parts.append(nxt)
            have += len(nxt)
        joined = np.concatenate(parts) if len(parts) > 1 else self.buf
        out, self.buf = joined[:n], joined[n:]
        return out


class _ScrubCache:
    """Scrubbed texts by text, so a post that is context in many threads is scrubbed once (bounded memory)."""

    def __init__(self, scrubber: Scrubber, limit: int = 100_000) -> None:
        self.scrubber, self.limit = scrubber, limit
        self.done: dict[str, tuple[str, tuple[str, ...]]] = {}

    def __call__(self, text: str | None, counts: Counter) -> str | None:
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
            counts[kind] += 1
        return hit[0]


def _batches(threads: Path, size: int) -> Iterator[pa.RecordBatch]:
    yield from pq.ParquetFile(threads).iter_batches(batch_size=size)


def _actions_struct(last: np.ndarray, action_idx: np.ndarray) -> pa.StructArray:
    """The 13 flags on last messages, null elsewhere."""
    fields = []
    for j in range(len(ACTIONS)):
        fields.append(pa.array(action_idx == j, pa.bool_()))
    return pa.StructArray.from_arrays(fields, names=list(ACTIONS), mask=pa.array(~last))


REMOVED = "<REMOVED>"


@dataclass
class BatchCounts:
    """What transforming one batch counted; added into the export report in batch order."""

    dropped: Counter = field(default_factory=Counter)
    removed_messages: int = 0
    pii: Counter = field(default_factory=Counter)


Work = Iterator[tuple[pa.Table, np.ndarray]]
"""Batches of threads, each with its messages' ranks, in order."""
BatchMapper = Callable[[Work, "BatchJob"], Iterator[tuple[pa.Table, BatchCounts]]]


@dataclass(frozen=True)
class BatchJob:
    """Everything a batch's transform needs besides the batch: picklable, so a Ray task can take it."""

    secret: bytes
    scrubber: Scrubber
    removed: frozenset[str]
    keep_times: bool
    clustered: pa.Array | None


def prepare_batch(threads: pa.Table, ranks: np.ndarray, job: BatchJob, scrub: _ScrubCache | None = None
                  ) -> tuple[pa.Table, BatchCounts]:
    """One batch of threads through every transform, and what it counted."""
    counts = BatchCounts()
    scrub = scrub or _ScrubCache(job.scrubber)
    part = _prepare_batch(threads, ranks, job.secret, scrub, counts, job.removed, job.keep_times)
    part, n_gone = without_removed(part, job.removed)
    if n_gone:
        counts.dropped["removal_request"] += n_gone
    if job.clustered is not None:
        has = pc.is_in(part["did"], value_set=job.clustered)
        lost = int(pc.sum(pc.invert(has)).as_py() or 0)
        if lost:
            counts.dropped["actor_without_persona"] += lost
            part = part.filter(has)
    return part, counts


def local_batches(work: Work, job: BatchJob) -> Iterator[tuple[pa.Table, BatchCounts]]:
    """The :data:`BatchMapper` of this process: one batch after another, one scrub cache for all."""
    scrub = _ScrubCache(job.scrubber)
    for threads, ranks in work:
        yield prepare_batch(threads, ranks, job, scrub)


def process_batches(workers: int) -> BatchMapper:
    """A :data:`BatchMapper` over ``workers`` local processes (a few batches in flight, results in order)."""
    if workers <= 1:
        return local_batches

    def mapper(work: Work, job: BatchJob) -> Iterator[tuple[pa.Table, BatchCounts]]:
        import multiprocessing as mp
        from collections import deque
        from concurrent.futures import ProcessPoolExecutor

        # spawn, not fork: forking a process that runs Arrow's and DuckDB's thread pools can deadlock
        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
            pending: deque = deque()
            for threads, ranks in work:
                pending.append(pool.submit(prepare_batch, threads, ranks, job))
                if len(pending) > workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()

    return mapper


def prepare_rows(threads: str | os.PathLike[str], secret: bytes, scrubber: Scrubber,
                 report: PrivacyCounts, removed: frozenset[str] = frozenset(), keep_times: bool = False,
                 clustered: frozenset[str] | None = None, *, mapper: BatchMapper | None = None,
                 temp_dir: str | os.PathLike[str] | None = None) -> Iterator[pa.Table]:
    """Apply the privacy transforms to every thread of a threads Parquet file, a batch at a time.

    Yields tables of rows without ``cluster_id``. Threads whose actor asked to be
    removed, or (with ``clustered``) has no persona, are dropped and counted in
    ``report.dropped``; ranks and ids are computed over every thread first, so dropping
    some changes nothing for the others. Memory holds a batch or a few (and the DuckDB
    sort behind the ranks, which spills to disk), never the whole table. ``mapper`` runs
    the batches' transforms (default: here, in order; the Ray engine: on its workers),
    and must yield them in order.

    Extra columns, dropped before writing: ``did`` (the actor, to join clusters and
    removals) and, with ``keep_times``, ``_times``/``_uris`` (per message, to rank time
    inside clusters), and ``split_key`` (:func:`blueprint.data.split_key`, what the
    split is drawn from). Messages by users in ``removed`` have their text replaced by
    ``<REMOVED>``.
    """
    path = Path(threads)
    ranks = Take(message_ranks(
        f"SELECT file_row_number AS row, 0 AS g, list_transform(messages, lambda m: m.time_us) AS times, "
        f"list_transform(messages, lambda m: m.uri) AS uris FROM {_parquet(path)}", temp_dir=temp_dir))
    job = BatchJob(secret, scrubber, frozenset(removed), keep_times,
                   pa.array(sorted(clustered), pa.string()) if clustered is not None else None)

    def work() -> Work:
        for batch in _batches(path, _BATCH):
            n = int(pc.sum(pc.list_value_length(batch.column("messages"))).as_py() or 0)
            yield pa.Table.from_batches([batch]), ranks(n)

    pii: Counter = Counter()
    for part, counts in (mapper or local_batches)(work(), job):
        report.dropped.update(counts.dropped)
        report.removed_messages += counts.removed_messages
        pii.update(counts.pii)
        report.pii_replaced = dict(sorted(pii.items()))
        yield part


def _prepare_batch(threads: pa.Table, ranks: np.ndarray, secret: bytes, scrub: _ScrubCache, report: BatchCounts,
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
            text_list.append(scrub(t, report.pii))
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


def cluster_ranks(prepared: str | os.PathLike[str], cid: np.ndarray) -> Iterator[np.ndarray]:
    """Ranks inside each thread's cluster for the rows of a prepared file (its ``_times``/``_uris``), in order;
    DuckDB spills beside the file."""
    groups = pa.table({"row": pa.array(np.arange(len(cid)), pa.int64()), "g": pa.array(cid, pa.int64())})
    return message_ranks(f"SELECT p.file_row_number AS row, c.g, p._times AS times, p._uris AS uris "
                         f"FROM {_parquet(Path(prepared))} p JOIN groups c ON c.row = p.file_row_number",
                         {"groups": groups}, temp_dir=Path(prepared).parent)


def with_ranks(rows: pa.Table, ranks: np.ndarray) -> pa.Table:
    """``rows`` with every message's ``relative_integer_time`` replaced by ``ranks`` (in message order)."""
    thread = rows["thread"].combine_chunks()
    msgs = thread.flatten()
    fields = [msgs.field(n) for n in ("user_id", "text")] + [pa.array(ranks, pa.int64()), msgs.field("actions")]
    struct = pa.StructArray.from_arrays(fields, names=["user_id", "text", "relative_integer_time", "actions"])
    offsets = pa.array(thread.offsets.to_numpy() - thread.offsets[0].as_py(), pa.int32())
    return rows.set_column(rows.schema.get_field_index("thread"), "thread", pa.ListArray.from_arrays(offsets, struct))
