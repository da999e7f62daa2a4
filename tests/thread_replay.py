"""The in-memory replay that the threads stage used before it went out of core.

Kept as an independent reference: the tests build threads both ways and require the
same rows, user texts, quarantine and report. It holds every event and every post in
Python objects, so it is for small inputs only.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from blueprint.actions import LIKE, REPOST
from blueprint.simpact.ingest import read_events
from blueprint.simpact.threads import ThreadConfig, ThreadReport, keyword_pattern


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

    def copy(self) -> _Post:
        return _Post(self.did, self.text, self.time_us, self.uri, self.parent, self.lang_ok, self.on_topic,
                     self.deleted)


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


def replay(events_dir, cfg: ThreadConfig) -> tuple[list[dict], list[dict], list[dict], dict]:
    """(threads rows, user texts, quarantine entries, report) by the in-memory replay."""
    table = read_events(events_dir, columns=_COLUMNS)
    in_scope, filters = _scope(table, cfg)
    b = _Builder(cfg, in_scope)
    report = ThreadReport(events=table.num_rows, filters=filters)
    rows, texts, quarantine = [], [], []
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
        if b.registered_post and ev["did"] in in_scope and ev["text"] and b.lang_ok(ev["langs"]) \
                and b.on_topic(ev["text"]):
            texts.append({"did": ev["did"], "action": ev["action"], "text": ev["text"]})
    return rows, texts, quarantine, report.to_dict()
