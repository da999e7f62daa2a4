"""Repository CAR exports: every record of the repository's Merkle search tree."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from blueprint.actions import COLLECTIONS
from blueprint.simpact.ingest.records import BadLine, Outcome, _created_us, record_row

log = logging.getLogger(__name__)


def _walk_mst(blocks: dict, root_cid) -> Iterator[tuple[str, object]]:
    """Yield (key, record CID) for every entry of a repository's Merkle search tree, in key order.

    The SDK decodes blocks but does not walk the tree: a node is ``{l, e: [{p, k, v, t}]}``,
    an entry's key is the first ``p`` bytes of the previous key plus ``k``, ``v`` is the
    record's CID, and ``l`` / ``t`` are subtrees to the left of the node and right of the entry.
    """
    from atproto_core.cid import CID

    stack: list = [("node", root_cid)]
    while stack:
        kind, item = stack.pop()
        if kind == "entry":
            yield item
            continue
        node = blocks.get(item)
        if node is None:
            raise BadLine("missing_block", "$.data", f"MST node {item} is not in the CAR")
        # push in reverse so the left subtree comes out first
        todo = []
        if node.get("l"):
            todo.append(("node", CID.decode(node["l"])))
        prev = b""
        for e in node.get("e") or []:
            key = prev[: e["p"]] + e["k"]
            prev = key
            todo.append(("entry", (key.decode("utf-8", "replace"), CID.decode(e["v"]))))
            if e.get("t"):
                todo.append(("node", CID.decode(e["t"])))
        stack.extend(reversed(todo))


def read_car(path: Path) -> Iterator[tuple[int, Outcome, str]]:
    """Every record of a repository export (``com.atproto.sync.getRepo``), decoded by the atproto SDK.

    Yields (record number, outcome, key) in key order; the key (``collection/rkey``)
    stands in for the line in quarantine reports.
    """
    from atproto import CAR
    from atproto_core.cid import CID

    try:
        car = CAR.from_bytes(path.read_bytes())
    except Exception as exc:  # the SDK raises several types for a damaged archive
        yield 1, BadLine("invalid_car", None, f"{type(exc).__name__}: {exc}"), ""
        return
    commit = car.blocks.get(car.root)
    if not isinstance(commit, dict) or not isinstance(commit.get("did"), str) or "data" not in commit:
        yield 1, BadLine("missing_field", "$.root", "the root block is not a repository commit"), ""
        return
    did = commit["did"]
    try:
        entries = list(_walk_mst(car.blocks, CID.decode(commit["data"])))
    except BadLine as bad:
        yield 1, bad, ""
        return
    for n, (key, cid) in enumerate(entries, start=1):
        collection, _, rkey = key.partition("/")
        record = car.blocks.get(cid)
        if record is None:
            yield n, BadLine("missing_block", key, f"record block {cid} is not in the CAR"), key
            continue
        if collection not in COLLECTIONS:
            yield n, "other_collection", key
            continue
        t = _created_us(record, rkey)
        if t is None:
            yield n, BadLine("missing_field", f"{key}.createdAt", "no createdAt and the key is not a TID"), key
            continue
        try:
            yield n, record_row(did, t, collection, "create", rkey, record, key), key
        except BadLine as bad:
            yield n, bad, key
