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



def tracked_copy(repo: Path, dest: Path, *, commit: bool = False) -> Path:
    """The repository as a fresh clone holds it: its tracked files only, copied (never linked), so that a test
    neither reads nor writes what a user made in their checkout (``demo-out/``, ``results/``, a secret).

    With ``commit``, the copy is a git repository of its own with those files committed, so that ``git status``
    there lists exactly what the commands run in it wrote."""
    import shutil
    import subprocess

    listed = subprocess.run(["git", "ls-files", "-z"], cwd=repo, capture_output=True, check=True).stdout
    for rel in filter(None, listed.decode().split("\0")):
        src = repo / rel
        if src.is_file():  # a file deleted in the work tree but not yet from the index is not in a clone
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel, follow_symlinks=False)
    if commit:
        git = ["git", "-c", "user.name=tests", "-c", "user.email=tests@localhost", "-c", "commit.gpgsign=false"]
        for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "a fresh clone"]):
            subprocess.run([*git, *args], cwd=dest, capture_output=True, check=True)
    return dest
