"""Threads: normalised events -> one example per in-scope action, with its context.

Thread shapes (DESIGN.md):
- text threads: the reply chain rebuilt through ``reply.parent``, oldest first,
  capped at ``max_depth`` messages; the last message is the actor's post or reply;
- reactions (like, unlike, repost, unrepost, quote): ``[target post, actor message]``;
- follow, unfollow, block, unblock: ``[target's latest post before the action, actor message]``;
- post_update, post_delete: ``[original post, actor message]``.

Events are replayed in time order (``time_us``, then input file and line), so input
that arrived out of order gives the same threads as sorted input. Unlike and
unrepost are resolved to their target through the like's or repost's record key;
unfollow and unblock likewise to the user. Deletes and updates of records that were
never seen are counted, not fatal. Reply cycles and self-references are bad input:
the event is skipped, counted, and written with its file and line to the quarantine.

Only actions of users in scope become examples. A user is in scope with at least
``min_user_posts`` posts and replies in the kept languages; context messages may
come from anyone.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from blueprint._io import atomic_open, atomic_path, write_json
from blueprint.actions import ACTIONS, BLOCK, FOLLOW, LIKE, POST, REPOST
from blueprint.errors import BadInputError
from blueprint.simpact.ingest import read_events

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


@dataclass(frozen=True)
class ThreadConfig:
    """How threads are rebuilt and who is in scope."""

    max_depth: int = 5
    langs: tuple[str, ...] | None = ("en",)
    min_user_posts: int = 2

    def __post_init__(self) -> None:
        if self.max_depth < 2:
            raise BadInputError(f"must be at least 2 (a reply and its parent), got {self.max_depth}",
                                field="max_depth")
        if self.min_user_posts < 0:
            raise BadInputError(f"must be at least 0, got {self.min_user_posts}", field="min_user_posts")


@dataclass
class _Post:
    did: str
    text: str
    time_us: int
    uri: str
    parent: str | None
    lang_ok: bool
    deleted: bool = False


@dataclass
class ThreadReport:
    """How many examples each action gave, and why the others gave none."""

    events: int = 0
    users_seen: int = 0
    users_in_scope: int = 0
    examples: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    quarantined: Counter = field(default_factory=Counter)

    def to_dict(self) -> dict:
        return {
            "events": self.events,
            "users_seen": self.users_seen,
            "users_in_scope": self.users_in_scope,
            "examples": sum(self.examples.values()),
            "examples_by_action": {a: self.examples.get(a, 0) for a in ACTIONS},
            "skipped": sum(self.skipped.values()),
            "skipped_by_reason": dict(sorted(self.skipped.items())),
            "quarantined": sum(self.quarantined.values()),
            "quarantined_by_reason": dict(sorted(self.quarantined.items())),
        }


class _Builder:
    def __init__(self, cfg: ThreadConfig, in_scope: set[str]) -> None:
        self.cfg = cfg
        self.in_scope = in_scope
        self.posts: dict[str, _Post] = {}
        self.records: dict[tuple[str, str, str], str] = {}  # (did, collection, rkey) -> subject
        self.latest_post: dict[str, str] = {}  # did -> uri of their latest live post
        self.report = ThreadReport()
        self.quarantine: list[dict] = []
        self.registered_post = False  # whether the last event added a post to the state

    def lang_ok(self, langs: list[str] | None) -> bool:
        return self.cfg.langs is None or (langs is not None and tuple(langs) == self.cfg.langs)

    @staticmethod
    def msg(post: _Post) -> dict:
        return {"did": post.did, "text": post.text, "time_us": post.time_us, "uri": post.uri}

    def chain(self, post: _Post) -> list[_Post] | str:
        """The reply chain ending at ``post``, oldest first, capped; or why there is none."""
        out = [post]
        seen = {post.uri}
        parent = post.parent
        while parent is not None and len(out) < self.cfg.max_depth:
            if parent in seen:
                return "reply_cycle"
            node = self.posts.get(parent)
            if node is None:
                break
            seen.add(parent)
            out.append(node)
            parent = node.parent
        out.reverse()
        return out

    def bad(self, ev: dict, reason: str, field: str) -> None:
        self.report.quarantined[reason] += 1
        self.quarantine.append({"file": ev["src"], "line": ev["line"], "reason": reason, "field": field})

    def skip(self, reason: str) -> None:
        self.report.skipped[reason] += 1

    def event(self, ev: dict) -> dict | None:
        """Apply one event to the state; return its example row, if it makes one."""
        did, action, coll = ev["did"], ev["action"], ev["collection"]
        uri = f"at://{did}/{coll}/{ev['rkey']}"
        actor_in = did in self.in_scope
        t = ev["time_us"]
        context: list[_Post] | None = None
        actor_text: str | None = None

        self.registered_post = False
        if action in ("post", "reply", "quote"):
            if uri in self.posts:
                self.skip("duplicate_record")
                return None
            parent = ev["reply_parent"]
            if parent == uri:
                self.bad(ev, "reply_self_reference", "$.commit.record.reply.parent.uri")
                return None
            post = _Post(did, ev["text"], t, uri, parent, self.lang_ok(ev["langs"]))
            if action == "reply":
                chain = self.chain(post)
                if isinstance(chain, str):
                    self.bad(ev, chain, "$.commit.record.reply.parent.uri")
                    return None
            self.posts[uri] = post
            self.latest_post[did] = uri
            self.registered_post = True
            if not actor_in:
                return None
            if not post.lang_ok:
                self.skip("language")
                return None
            if action == "reply":
                if len(chain) < 2:
                    self.skip("reply_parent_unseen")
                    return None
                return self.row(ev, uri, chain[:-1], post)
            if action == "quote":
                target = self.posts.get(ev["subject_uri"])
                if target is None:
                    self.skip("target_unseen")
                    return None
                context = [target]
            else:
                context = []
            return self.row(ev, uri, context, post)

        if action in ("post_update", "post_delete"):
            original = self.posts.get(uri)
            if original is None or original.deleted:
                self.skip(f"{action}_unseen")
                return None
            before = _Post(original.did, original.text, original.time_us, original.uri, original.parent,
                           original.lang_ok)
            if action == "post_update":
                original.text = ev["text"]
                original.lang_ok = self.lang_ok(ev["langs"])
                actor_text = ev["text"]
            else:
                original.deleted = True
                if self.latest_post.get(did) == uri:
                    del self.latest_post[did]
            if not actor_in:
                return None
            if not before.lang_ok or (action == "post_update" and not original.lang_ok):
                self.skip("language")
                return None
            actor = _Post(did, actor_text, t, uri, None, True)
            return self.row(ev, f"{uri}#{action}@{t}", [before], actor)

        # likes, reposts, follows, blocks and their deletes
        key = (did, coll, ev["rkey"])
        if action in ("like", "repost", "follow", "block"):
            if key in self.records:
                self.skip("duplicate_record")
                return None
            subject = ev["subject_uri"] if coll in (LIKE, REPOST) else ev["subject_did"]
            self.records[key] = subject
        else:
            subject = self.records.pop(key, None)
            if subject is None:
                self.skip(f"{action}_unresolved")
                return None
        if not actor_in:
            return None
        if coll in (LIKE, REPOST):
            target = self.posts.get(subject)
            if target is None or target.deleted:
                self.skip("target_unseen")
                return None
        else:
            latest = self.latest_post.get(subject)
            target = self.posts.get(latest) if latest is not None else None
            if target is None:
                self.skip("target_has_no_post")
                return None
        if not target.lang_ok:
            self.skip("language")
            return None
        actor = _Post(did, None, t, uri, None, True)
        event_key = uri if action in ("like", "repost", "follow", "block") else f"{uri}#{action}@{t}"
        return self.row(ev, event_key, [target], actor)

    def row(self, ev: dict, key: str, context: list[_Post], actor: _Post) -> dict:
        self.report.examples[ev["action"]] += 1
        msgs = [self.msg(p) for p in context]
        msgs.append({"did": actor.did, "text": actor.text, "time_us": ev["time_us"], "uri": actor.uri})
        return {"key": key, "did": ev["did"], "action": ev["action"], "time_us": ev["time_us"],
                "messages": msgs, "src": ev["src"], "line": ev["line"]}


_COLUMNS = ["src", "line", "did", "time_us", "collection", "operation", "rkey", "action", "text", "langs",
            "reply_parent", "reply_root", "subject_uri", "subject_did"]


def _time_order(table: pa.Table) -> np.ndarray:
    """Indices that replay events by time, then by input file and line: a total, stable order."""
    return pa.compute.sort_indices(
        table, sort_keys=[("time_us", "ascending"), ("src", "ascending"), ("line", "ascending")]
    ).to_numpy()


def _events_in_order(table: pa.Table) -> Iterator[dict]:
    ordered = table.take(pa.array(_time_order(table)))
    for batch in ordered.to_batches(max_chunksize=65_536):
        cols = {name: batch.column(name).to_pylist() for name in _COLUMNS}
        for i in range(batch.num_rows):
            yield {name: cols[name][i] for name in _COLUMNS}


def _users_in_scope(table: pa.Table, cfg: ThreadConfig) -> tuple[set[str], int]:
    import pyarrow.compute as pc

    texts = table.filter(pc.is_in(table["action"], pa.array(["post", "reply"])))
    ok = np.ones(texts.num_rows, dtype=bool)
    if cfg.langs is not None:
        langs = texts["langs"].to_pylist()
        ok = np.fromiter((lg is not None and tuple(lg) == cfg.langs for lg in langs), bool, texts.num_rows)
    dids = texts["did"].to_numpy(zero_copy_only=False)[ok]
    users, counts = np.unique(dids, return_counts=True) if len(dids) else (np.array([]), np.array([]))
    in_scope = {str(u) for u, c in zip(users, counts) if c >= cfg.min_user_posts}
    return in_scope, len(set(table["did"].to_pylist()))


def build_threads(events_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str],
                  config: ThreadConfig | None = None) -> ThreadReport:
    """Rebuild threads from the ingest stage's events; write ``threads.parquet``,
    ``user_texts.parquet``, ``quarantine.jsonl`` and ``report.json`` to ``out_dir``."""
    cfg = config or ThreadConfig()
    out_dir = Path(out_dir)
    table = read_events(events_dir, columns=_COLUMNS)
    in_scope, n_users = _users_in_scope(table, cfg)
    b = _Builder(cfg, in_scope)
    b.report.events = table.num_rows
    b.report.users_seen = n_users
    b.report.users_in_scope = len(in_scope)
    rows: list[dict] = []
    texts: list[dict] = []
    for ev in _events_in_order(table):
        row = b.event(ev)
        if row is not None:
            rows.append(row)
        # the user's own voice, for the persona stage: every accepted post in a kept language
        if b.registered_post and ev["did"] in in_scope and ev["text"] and b.lang_ok(ev["langs"]):
            texts.append({"did": ev["did"], "action": ev["action"], "text": ev["text"]})
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / "threads.parquet") as tmp:
        pq.write_table(pa.Table.from_pylist(rows, schema=THREAD_SCHEMA), tmp, compression="zstd")
    with atomic_path(out_dir / "user_texts.parquet") as tmp:
        pq.write_table(pa.Table.from_pylist(texts, schema=USER_TEXT_SCHEMA), tmp, compression="zstd")
    with atomic_open(out_dir / "quarantine.jsonl", "wb") as fh:
        for q in b.quarantine:
            fh.write(orjson.dumps(q) + b"\n")
    write_json(out_dir / "report.json", {"config": asdict(cfg), **b.report.to_dict()})
    return b.report


def read_threads(out_dir: str | os.PathLike[str]) -> pa.Table:
    return pq.read_table(Path(out_dir) / "threads.parquet")
