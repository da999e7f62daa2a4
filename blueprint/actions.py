"""The action vocabulary and the mapping from one Jetstream commit to its action.

The public BluePrint release carries 13 boolean action flags on the last message of
a thread; :data:`ACTIONS` fixes their order, which is also the order of the
``action`` ClassLabel in the exported dataset.

:func:`action_of` is the one place where a raw record becomes an action name. Every
reader (Jetstream JSONL, repository CAR exports, getPostThread JSON) normalises its
input into Jetstream-shaped events and asks this function, so the mapping in
ARCHITECTURE.md (*Actions and thread shapes*) is implemented exactly once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

ACTIONS: Final[tuple[str, ...]] = (
    "post",
    "reply",
    "quote",
    "post_update",
    "post_delete",
    "like",
    "unlike",
    "repost",
    "unrepost",
    "follow",
    "unfollow",
    "block",
    "unblock",
)
"""The 13 actions, in the fixed order of the dataset's ClassLabel."""

ACTION_INDEX: Final[dict[str, int]] = {name: i for i, name in enumerate(ACTIONS)}

TEXT_ACTIONS: Final[frozenset[str]] = frozenset({"post", "reply", "quote", "post_update"})
"""Actions whose message carries text (the target of the stylistic metrics)."""

REACTION_ACTIONS: Final[frozenset[str]] = frozenset({"like", "unlike", "repost", "unrepost", "quote"})
"""Actions whose thread is ``[target post, actor message]``."""

GRAPH_ACTIONS: Final[frozenset[str]] = frozenset({"follow", "unfollow", "block", "unblock"})
"""Actions aimed at a user; their context is the target's latest post before the action."""

POST = "app.bsky.feed.post"
LIKE = "app.bsky.feed.like"
REPOST = "app.bsky.feed.repost"
FOLLOW = "app.bsky.graph.follow"
BLOCK = "app.bsky.graph.block"

COLLECTIONS: Final[frozenset[str]] = frozenset({POST, LIKE, REPOST, FOLLOW, BLOCK})
"""The record collections that carry an action; every other collection yields none."""

# (collection, operation) -> action, for everything but post creates, which
# depend on the record's reply and embed fields.
_SIMPLE: Final[dict[tuple[str, str], str]] = {
    (POST, "update"): "post_update",
    (POST, "delete"): "post_delete",
    (LIKE, "create"): "like",
    (LIKE, "delete"): "unlike",
    (REPOST, "create"): "repost",
    (REPOST, "delete"): "unrepost",
    (FOLLOW, "create"): "follow",
    (FOLLOW, "delete"): "unfollow",
    (BLOCK, "create"): "block",
    (BLOCK, "delete"): "unblock",
}


def quoted_uri(record: Mapping[str, Any]) -> str | None:
    """Return the ``at://`` URI a post record quotes, or None.

    Handles both ``app.bsky.embed.record`` (``embed.record.uri``) and
    ``app.bsky.embed.recordWithMedia`` (``embed.record.record.uri``).
    """
    embed = record.get("embed")
    if not isinstance(embed, Mapping):
        return None
    inner = embed.get("record")
    if not isinstance(inner, Mapping):
        return None
    if "uri" in inner:
        uri = inner.get("uri")
    else:  # recordWithMedia nests the strong ref one level deeper
        nested = inner.get("record")
        uri = nested.get("uri") if isinstance(nested, Mapping) else None
    return uri if isinstance(uri, str) else None


def classify(collection: str, operation: str, *, is_reply: bool = False, quotes: bool = False) -> str | None:
    """Return the action of a commit from its collection, operation and, for post creates,
    whether the record replies or quotes. None where the table in ARCHITECTURE.md lists none.

    This is the mapping itself; :func:`action_of` and the ingest stage's typed decoder
    both call it. A reply that also quotes is a ``reply``: it sits in a reply chain,
    and a reply's thread is the chain, not ``[target, actor]``.
    """
    if collection == POST and operation == "create":
        if is_reply:
            return "reply"
        return "quote" if quotes else "post"
    return _SIMPLE.get((collection, operation))


def action_of(event: Mapping[str, Any]) -> str | None:
    """Return the action one Jetstream event stands for, or None where it yields none.

    Identity and account events, commits to collections other than posts, likes,
    reposts, follows and blocks, and operations the table does not list (for
    example a like ``update``) yield None, as does a post create without a record.
    The function is pure: it reads the event and touches nothing else.
    """
    if event.get("kind") != "commit":
        return None
    commit = event.get("commit")
    if not isinstance(commit, Mapping):
        return None
    collection = commit.get("collection")
    operation = commit.get("operation")
    if not isinstance(collection, str) or not isinstance(operation, str):
        return None
    if collection == POST and operation == "create":
        record = commit.get("record")
        if not isinstance(record, Mapping):
            return None
        return classify(POST, "create", is_reply=isinstance(record.get("reply"), Mapping),
                        quotes=quoted_uri(record) is not None)
    return _SIMPLE.get((collection, operation))

