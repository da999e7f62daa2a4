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

Filters, each configurable and each counted in the report:
- language: a post is kept when its ``langs`` equal ``langs`` exactly (the paper keeps ``['en']``);
- topic: a post is on topic when it matches the keyword lists (default: the 2025
  Canadian federal election list shipped in ``blueprint/resources/topics``); a
  thread is kept when any of its texts is on topic;
- scope: a user is in scope with at least ``min_user_posts`` kept posts and replies.
Only in-scope users' actions become examples; context may come from anyone.

Every event ends in exactly one bucket of the report: an example, a skip reason, a
quarantine reason, or ``actor_out_of_scope``.
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from blueprint._io import atomic_open, atomic_path, write_json
from blueprint.actions import ACTIONS, LIKE, REPOST
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

DEFAULT_TOPICS = "canada_2025"


def read_keywords(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """Keywords from a list file: one per line; ``# `` starts a comment; ``#tag`` is a keyword."""
    p = Path(path)
    if not p.is_file():
        raise BadInputError("no such keyword file", path=p, field="--topics")
    return _parse_keywords(p.read_text(encoding="utf-8"), str(p))


def _parse_keywords(text: str, source: str) -> tuple[str, ...]:
    out = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        word = line.strip()
        if not word or word == "#" or word.startswith("# "):
            continue
        word = word.lstrip("#").strip().lower()
        if not word or word == "*":
            raise BadInputError(f"empty keyword {line!r}", path=source, line=lineno)
        out.append(word)
    if not out:
        raise BadInputError("the keyword list is empty", path=source)
    return tuple(dict.fromkeys(out))


def default_keywords() -> tuple[str, ...]:
    """The shipped keyword list for the 2025 Canadian federal election."""
    text = resources.files("blueprint").joinpath(f"resources/topics/{DEFAULT_TOPICS}.txt").read_text("utf-8")
    return _parse_keywords(text, f"blueprint/resources/topics/{DEFAULT_TOPICS}.txt")


def keyword_pattern(keywords: Sequence[str]) -> re.Pattern:
    """One case-insensitive regex for whole-word keywords; ``word*`` matches any ending."""
    parts = []
    for k in sorted(set(keywords), key=len, reverse=True):
        if k.endswith("*"):
            parts.append(re.escape(k[:-1]) + r"[\w'-]*")
        else:
            parts.append(re.escape(k))
    return re.compile(r"(?<![\w'])(?:" + "|".join(parts) + r")(?![\w'])", re.IGNORECASE)


@dataclass(frozen=True)
class ThreadConfig:
    """How threads are rebuilt, and the filters that decide scope."""

    max_depth: int = 5
    langs: tuple[str, ...] | None = ("en",)
    topics: tuple[str, ...] | None = field(default_factory=default_keywords)
    min_user_posts: int = 2

    def __post_init__(self) -> None:
        if self.max_depth < 2:
            raise BadInputError(f"must be at least 2 (a reply and its parent), got {self.max_depth}",
                                field="max_depth")
        if self.min_user_posts < 0:
            raise BadInputError(f"must be at least 0, got {self.min_user_posts}", field="min_user_posts")
        if self.topics is not None and not self.topics:
            raise BadInputError("give at least one keyword, or None to keep every topic", field="topics")


@dataclass
class _Post:
    did: str
    text: str | None
    time_us: int
    uri: str
    parent: str | None
    lang_ok: bool
    on_topic: bool
    deleted: bool = False

    def copy(self) -> "_Post":
        return _Post(self.did, self.text, self.time_us, self.uri, self.parent, self.lang_ok, self.on_topic,
                     self.deleted)


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


class _Bad(str):
    """A reason that quarantines the event instead of merely skipping it."""


class _Builder:
    def __init__(self, cfg: ThreadConfig, in_scope: set[str]) -> None:
        self.cfg = cfg
        self.in_scope = in_scope
        self.topic = keyword_pattern(cfg.topics) if cfg.topics is not None else None
        self.posts: dict[str, _Post] = {}
        self.records: dict[tuple[str, str, str], str] = {}  # (did, collection, rkey) -> subject
        self.latest_post: dict[str, str] = {}  # did -> uri of their latest live post
        self.registered_post = False  # whether the last event added a post to the state

    def lang_ok(self, langs: list[str] | None) -> bool:
        return self.cfg.langs is None or (langs is not None and tuple(langs) == self.cfg.langs)

    def on_topic(self, text: str | None) -> bool:
        return self.topic is None or (bool(text) and self.topic.search(text) is not None)

    def chain(self, post: _Post) -> list[_Post] | str:
        """The reply chain ending at ``post``, oldest first, capped; or why there is none.

        A post in another language ends the chain, as if it had not been collected:
        the paper keeps English posts only, so context is English too.
        """
        out = [post]
        seen = {post.uri}
        parent = post.parent
        while parent is not None:
            if parent in seen:
                return _Bad("reply_cycle")
            node = self.posts.get(parent)
            if node is None or len(out) >= self.cfg.max_depth:
                break
            seen.add(parent)
            if node.lang_ok:
                out.append(node)
            else:
                break
            parent = node.parent
        out.reverse()
        return out

    def thread_ok(self, posts: Sequence[_Post]) -> str | None:
        """Why a thread fails the filters, or None: every text in a kept language, some text on topic."""
        if not all(p.lang_ok for p in posts):
            return "language"
        if self.topic is not None and not any(p.on_topic for p in posts):
            return "off_topic"
        return None

    def event(self, ev: dict) -> dict | str:
        """Apply one event to the state; return its example row, or the reason it gives none."""
        did, action, coll = ev["did"], ev["action"], ev["collection"]
        uri = f"at://{did}/{coll}/{ev['rkey']}"
        actor_in = did in self.in_scope
        t = ev["time_us"]
        self.registered_post = False

        if action in ("post", "reply", "quote"):
            if uri in self.posts:
                return "duplicate_record"
            parent = ev["reply_parent"]
            if parent == uri:
                return _Bad("reply_self_reference")
            text = ev["text"]
            post = _Post(did, text, t, uri, parent, self.lang_ok(ev["langs"]), self.on_topic(text))
            chain = self.chain(post) if action == "reply" else [post]
            if isinstance(chain, str):
                return chain
            self.posts[uri] = post
            self.latest_post[did] = uri
            self.registered_post = True
            if not actor_in:
                return "actor_out_of_scope"
            if action == "reply" and len(chain) < 2:
                if not post.lang_ok:
                    return "language"
                return "reply_parent_unseen" if parent not in self.posts else "language"
            if action == "quote":
                target = self.posts.get(ev["subject_uri"])
                if target is None or target.deleted:
                    return "target_unseen"
                chain = [target, post]
            why = self.thread_ok(chain)
            return why or self.row(ev, uri, chain[:-1], post)

        if action in ("post_update", "post_delete"):
            original = self.posts.get(uri)
            if original is None or original.deleted:
                return f"{action}_unseen"
            before = original.copy()
            if action == "post_update":
                original.text = ev["text"]
                original.lang_ok = self.lang_ok(ev["langs"])
                original.on_topic = self.on_topic(ev["text"])
                actor = _Post(did, ev["text"], t, uri, None, original.lang_ok, original.on_topic)
            else:
                original.deleted = True
                if self.latest_post.get(did) == uri:
                    del self.latest_post[did]
                actor = _Post(did, None, t, uri, None, True, False)
            if not actor_in:
                return "actor_out_of_scope"
            why = self.thread_ok([before, actor])
            return why or self.row(ev, f"{uri}#{action}@{t}", [before], actor)

        # likes, reposts, follows, blocks and their deletes
        key = (did, coll, ev["rkey"])
        if action in ("like", "repost", "follow", "block"):
            if key in self.records:
                return "duplicate_record"
            subject = ev["subject_uri"] if coll in (LIKE, REPOST) else ev["subject_did"]
            self.records[key] = subject
        else:
            subject = self.records.pop(key, None)
            if subject is None:
                return f"{action}_unresolved"
        if not actor_in:
            return "actor_out_of_scope"
        if coll in (LIKE, REPOST):
            target = self.posts.get(subject)
            if target is None or target.deleted:
                return "target_unseen"
        else:
            latest = self.latest_post.get(subject)
            target = self.posts.get(latest) if latest is not None else None
            if target is None:
                return "target_has_no_post"
        why = self.thread_ok([target])
        if why:
            return why
        actor = _Post(did, None, t, uri, None, True, False)
        event_key = uri if action in ("like", "repost", "follow", "block") else f"{uri}#{action}@{t}"
        return self.row(ev, event_key, [target], actor)

    @staticmethod
    def row(ev: dict, key: str, context: Sequence[_Post], actor: _Post) -> dict:
        msgs = [{"did": p.did, "text": p.text, "time_us": p.time_us, "uri": p.uri} for p in context]
        msgs.append({"did": actor.did, "text": actor.text, "time_us": ev["time_us"], "uri": actor.uri})
        return {"key": key, "did": ev["did"], "action": ev["action"], "time_us": ev["time_us"],
                "messages": msgs, "src": ev["src"], "line": ev["line"]}


_COLUMNS = ["src", "line", "did", "time_us", "collection", "operation", "rkey", "action", "text", "langs",
            "reply_parent", "reply_root", "subject_uri", "subject_did"]


def _events_in_order(table: pa.Table) -> Iterator[dict]:
    """Events by time, then by input file and line: a total, stable order whatever the arrival order."""
    order = pc.sort_indices(table, sort_keys=[("time_us", "ascending"), ("src", "ascending"),
                                              ("line", "ascending")])
    ordered = table.take(order)
    for batch in ordered.to_batches(max_chunksize=65_536):
        cols = [batch.column(name).to_pylist() for name in _COLUMNS]
        for values in zip(*cols):
            yield dict(zip(_COLUMNS, values))


def _scope(table: pa.Table, cfg: ThreadConfig) -> tuple[set[str], dict]:
    """Users with at least ``min_user_posts`` posts and replies that pass the language and topic filters."""
    texts = table.filter(pc.is_in(table["action"], pa.array(["post", "reply"])))
    n = texts.num_rows
    lang_ok = np.ones(n, dtype=bool)
    if cfg.langs is not None:
        lang_ok = np.fromiter((lg is not None and tuple(lg) == cfg.langs for lg in texts["langs"].to_pylist()),
                              bool, n)
    topic_ok = np.ones(n, dtype=bool)
    if cfg.topics is not None:
        rx = keyword_pattern(cfg.topics)
        topic_ok = np.fromiter((bool(t) and rx.search(t) is not None for t in texts["text"].to_pylist()), bool, n)
    kept = lang_ok & topic_ok
    dids = texts["did"].to_numpy(zero_copy_only=False)[kept]
    users, counts = np.unique(dids, return_counts=True) if len(dids) else (np.array([]), np.array([]))
    in_scope = {str(u) for u, c in zip(users, counts) if c >= cfg.min_user_posts}
    if cfg.min_user_posts == 0:
        in_scope |= set(table["did"].to_pylist())
    seen = len(pc.unique(table["did"])) if table.num_rows else 0
    filters = {
        "language": {"langs": list(cfg.langs) if cfg.langs else None, "posts_and_replies": n,
                     "kept": int(lang_ok.sum())},
        "topic": {"keywords": len(cfg.topics) if cfg.topics else None, "posts_and_replies": int(lang_ok.sum()),
                  "kept": int(kept.sum())},
        "scope": {"min_user_posts": cfg.min_user_posts, "users_seen": seen, "users_in_scope": len(in_scope)},
    }
    return in_scope, filters


def build_threads(events_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str],
                  config: ThreadConfig | None = None) -> ThreadReport:
    """Rebuild threads from the ingest stage's events; write ``threads.parquet``,
    ``user_texts.parquet``, ``quarantine.jsonl`` and ``report.json`` to ``out_dir``."""
    cfg = config or ThreadConfig()
    out_dir = Path(out_dir)
    table = read_events(events_dir, columns=_COLUMNS)
    in_scope, filters = _scope(table, cfg)
    b = _Builder(cfg, in_scope)
    report = ThreadReport(events=table.num_rows, filters=filters)
    rows: list[dict] = []
    texts: list[dict] = []
    quarantine: list[dict] = []
    for ev in _events_in_order(table):
        out = b.event(ev)
        if isinstance(out, dict):
            rows.append(out)
            report.examples[ev["action"]] += 1
        elif isinstance(out, _Bad):
            report.quarantined[str(out)] += 1
            quarantine.append({"file": ev["src"], "line": ev["line"], "reason": str(out),
                               "field": "$.commit.record.reply.parent.uri"})
        else:
            report.skipped[out] += 1
        # the user's own voice, for the persona stage: every accepted post that passes the filters
        if b.registered_post and ev["did"] in in_scope and ev["text"] and b.lang_ok(ev["langs"]) \
                and b.on_topic(ev["text"]):
            texts.append({"did": ev["did"], "action": ev["action"], "text": ev["text"]})
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / "threads.parquet") as tmp:
        pq.write_table(pa.Table.from_pylist(rows, schema=THREAD_SCHEMA), tmp, compression="zstd")
    with atomic_path(out_dir / "user_texts.parquet") as tmp:
        pq.write_table(pa.Table.from_pylist(texts, schema=USER_TEXT_SCHEMA), tmp, compression="zstd")
    with atomic_open(out_dir / "quarantine.jsonl", "wb") as fh:
        for q in quarantine:
            fh.write(orjson.dumps(q) + b"\n")
    config_doc = asdict(cfg)
    config_doc["topics"] = None if cfg.topics is None else {"keywords": len(cfg.topics)}
    write_json(out_dir / "report.json", {"config": config_doc, **report.to_dict()})
    return report


def read_threads(out_dir: str | os.PathLike[str]) -> pa.Table:
    return pq.read_table(Path(out_dir) / "threads.parquet")
