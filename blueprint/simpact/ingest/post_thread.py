"""getPostThread responses: the thread's posts, parents and replies."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import orjson

from blueprint.atproto import AT_URI_RE
from blueprint.simpact.ingest.records import BadLine, Outcome, _created_us, record_row

log = logging.getLogger(__name__)


def read_post_thread(path: Path) -> Iterator[tuple[int, Outcome, str]]:
    """Every post of an ``app.bsky.feed.getPostThread`` response: ancestors oldest first, then
    the anchor, then its replies depth-first. Blocked and missing posts carry no action."""
    try:
        doc = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        yield 1, BadLine("invalid_json", None, str(exc)), ""
        return
    if not isinstance(doc, dict) or not isinstance(doc.get("thread"), dict):
        yield 1, BadLine("missing_field", "$.thread", "not a getPostThread response"), ""
        return
    chain = []
    node = doc["thread"]
    path_ = "$.thread"
    while isinstance(node, dict):
        chain.append((node, path_))
        node = node.get("parent")
        path_ += ".parent"
    ordered = list(reversed(chain))
    stack = [(r, f"$.thread.replies[{i}]") for i, r in reversed(list(enumerate(doc["thread"].get("replies") or [])))]
    while stack:
        node, where = stack.pop()
        if not isinstance(node, dict):
            continue
        ordered.append((node, where))
        kids = node.get("replies") or []
        stack.extend((r, f"{where}.replies[{i}]") for i, r in reversed(list(enumerate(kids))))
    for n, (node, where) in enumerate(ordered, start=1):
        kind = node.get("$type", "")
        if kind.endswith("#blockedPost"):
            yield n, "blocked_post", where
            continue
        if kind.endswith("#notFoundPost"):
            yield n, "not_found_post", where
            continue
        post = node.get("post")
        if not isinstance(post, dict):
            yield n, BadLine("missing_field", f"{where}.post", "a thread view without its post"), where
            continue
        uri, record = post.get("uri"), post.get("record")
        m = AT_URI_RE.match(uri) if isinstance(uri, str) else None
        if m is None:
            yield n, BadLine("mistyped_field", f"{where}.post.uri", f"not an at:// record URI: {uri!r}"), where
            continue
        t = _created_us(record, m.group("rkey"))
        if t is None:
            yield n, BadLine("missing_field", f"{where}.post.record.createdAt", "no createdAt"), where
            continue
        try:
            yield n, record_row(m.group("did"), t, m.group("collection"), "create", m.group("rkey"), record,
                                f"{where}.post.record"), where
        except BadLine as bad:
            yield n, bad, where
