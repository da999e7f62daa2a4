"""Small builders of real-shaped Jetstream lines for tests."""

from __future__ import annotations

from pathlib import Path

import orjson

POST = "app.bsky.feed.post"


def uri(did: str, rkey: str, collection: str = POST) -> str:
    return f"at://{did}/{collection}/{rkey}"


def commit(did: str, t: int, collection: str, operation: str, rkey: str, record: dict | None = None) -> dict:
    c = {"rev": f"rev{t}", "operation": operation, "collection": collection, "rkey": rkey}
    if record is not None:
        c["record"] = {"$type": collection, "createdAt": "2025-03-23T00:00:00.000Z", **record}
        c["cid"] = f"bafy{rkey}"
    return {"did": did, "time_us": t, "kind": "commit", "commit": c}


def post(did: str, t: int, rkey: str, text: str, *, parent: str | None = None, root: str | None = None,
         quote: str | None = None, langs=("en",)) -> dict:
    record: dict = {"text": text}
    if langs is not None:
        record["langs"] = list(langs)
    if parent is not None:
        record["reply"] = {"parent": {"uri": parent, "cid": "c"}, "root": {"uri": root or parent, "cid": "c"}}
    if quote is not None:
        record["embed"] = {"$type": "app.bsky.embed.record", "record": {"uri": quote, "cid": "c"}}
    return commit(did, t, POST, "create", rkey, record)


def write_lines(path: Path, events, raw_lines=()) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        for e in events:
            fh.write(orjson.dumps(e) + b"\n")
        for raw in raw_lines:
            fh.write(raw + b"\n")
    return path

