"""The threads stage: the ingest stage's events -> ``threads.parquet``, ``user_texts.parquet``, the quarantine
and the report.

DuckDB (:mod:`.sql`) orders, maps and joins; :mod:`.replay` applies the rules to the
ordered events; this module runs the two and writes what they found.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from blueprint._io import atomic_open, atomic_path, write_json
from blueprint.actions import ACTIONS
from blueprint.simpact.config import ThreadConfig
from blueprint.simpact.threads import sql
from blueprint.simpact.threads.replay import Replay

log = logging.getLogger(__name__)

MESSAGE_TYPE = pa.struct(
    [
        pa.field("did", pa.string()),
        pa.field("text", pa.string()),
        pa.field("time_us", pa.int64()),
        pa.field("uri", pa.string()),  # the record the message stands for (at://did/collection/rkey)
    ]
)

THREAD_SCHEMA = pa.schema(
    [
        pa.field("key", pa.string(), nullable=False),  # the actor's event: unique per example
        pa.field("did", pa.string(), nullable=False),  # the actor
        pa.field("action", pa.string(), nullable=False),
        pa.field("time_us", pa.int64(), nullable=False),
        pa.field("messages", pa.list_(MESSAGE_TYPE), nullable=False),
        pa.field("src", pa.string(), nullable=False),
        pa.field("line", pa.int64(), nullable=False),
    ]
)

USER_TEXT_SCHEMA = pa.schema(
    [
        pa.field("did", pa.string(), nullable=False),
        pa.field("action", pa.string(), nullable=False),  # post, reply or quote
        pa.field("text", pa.string(), nullable=False),
    ]
)


_REPLY_PARENT_FIELD = "$.commit.record.reply.parent.uri"  # where a quarantined reply's fault lies


@dataclass
class ThreadReport:
    """Where every event went, and what each filter kept."""

    events: int = 0
    examples: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    quarantined: Counter = field(default_factory=Counter)
    filters: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "events": self.events,
            "examples": sum(self.examples.values()),
            "examples_by_action": {a: self.examples.get(a, 0) for a in ACTIONS},
            "skipped": sum(self.skipped.values()),
            "skipped_by_reason": dict(sorted(self.skipped.items())),
            "quarantined": sum(self.quarantined.values()),
            "quarantined_by_reason": dict(sorted(self.quarantined.items())),
            "filters": self.filters,
            "users_seen": self.filters.get("scope", {}).get("users_seen", 0),
            "users_in_scope": self.filters.get("scope", {}).get("users_in_scope", 0),
        }



def _write(batches, path: Path, schema: pa.Schema) -> None:
    with atomic_path(path) as tmp:
        with pq.ParquetWriter(tmp, schema, compression="zstd") as w:
            for batch in batches:
                table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
                w.write_table(table.cast(schema))



def build_threads(events_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str],
                  config: ThreadConfig | None = None, *, memory_limit: str | None = "1GB",
                  threads: int | None = None, progress: bool = False) -> ThreadReport:
    """Rebuild threads from the ingest stage's events; write ``threads.parquet``,
    ``user_texts.parquet``, ``quarantine.jsonl`` and ``report.json`` to ``out_dir``.

    Memory is bounded: DuckDB works under ``memory_limit`` and spills to a database
    file in ``out_dir`` (removed at the end); the replay holds a few bytes per post,
    user and record key. The output does not depend on ``memory_limit`` or ``threads``.
    """
    from blueprint.progress import progress_bar

    cfg = config or ThreadConfig()
    events_dir, out_dir = Path(events_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    con, db = sql.connect(out_dir, memory_limit, threads)
    try:
        sql.load_events(con, events_dir, cfg)
        sql.mark_topics(con, cfg)
        filters = sql.scope(con, cfg)
        n_posts, n_users, n_records = sql.map_ids(con)
        n_events = con.execute("SELECT count(*) FROM ev").fetchone()[0]
        report = ThreadReport(events=n_events, filters=filters)
        replay = Replay(cfg.max_depth, n_posts, n_users, n_records, report)
        sql.create_outputs(con)
        with progress_bar(total=n_events, desc="threads", unit="event", enabled=progress) as pbar:
            for batch in sql.slim_events(con, cfg):
                sql.store(con, replay.run(batch))
                pbar.update(batch.num_rows)
        _write(sql.thread_batches(con), out_dir / "threads.parquet", THREAD_SCHEMA)
        _write(sql.user_texts(con), out_dir / "user_texts.parquet", USER_TEXT_SCHEMA)
        bad = sql.quarantined(con)
    finally:
        sql.disconnect(con, db)
    with atomic_open(out_dir / "quarantine.jsonl", "wb") as fh:
        for src, line, reason in bad:
            fh.write(orjson.dumps({"file": src, "line": line, "reason": reason, "field": _REPLY_PARENT_FIELD}) + b"\n")
    config_doc = asdict(cfg)
    config_doc["topics"] = None if cfg.topics is None else {"keywords": len(cfg.topics)}
    write_json(out_dir / "report.json", {"config": config_doc, **report.to_dict()})
    return report


def read_threads(out_dir: str | os.PathLike[str]) -> pa.Table:
    return pq.read_table(Path(out_dir) / "threads.parquet")

