"""The public release's row format, checked field by field: one line of ``processed_{k}_clusters/cluster_{i}.jsonl``
as a BluePrint row. ``blueprint import-release`` (:mod:`blueprint.simpact.release`) and the ``datasets`` builder
(:mod:`blueprint.builder`) both read the release through :func:`release_row`.

A line is ``{"thread": [{"user_id", "text", "relative_integer_time", "actions"}, ...], "cluster_id"}``, with the
13 action flags on the last message only; a bad field is named by its file, line and field.
"""

from __future__ import annotations

import os
from collections import Counter

from blueprint.actions import ACTIONS, TEXT_ACTIONS
from blueprint.data import content_id
from blueprint.errors import BadInputError

_MESSAGE_KEYS = ("user_id", "text", "relative_integer_time", "actions")

PathLike = str | os.PathLike[str]


def _check_message(m, where: str, last: bool, path: PathLike, lineno: int, ignored: Counter) -> None:
    if not isinstance(m, dict):
        raise BadInputError(f"must be an object, got {type(m).__name__}", path=path, line=lineno, field=where)
    for key in m.keys() - set(_MESSAGE_KEYS):
        ignored[f"{where.split('[')[0]}[].{key}"] += 1
    for key in _MESSAGE_KEYS:
        if key not in m:
            raise BadInputError("missing", path=path, line=lineno, field=f"{where}.{key}")
    if not isinstance(m["user_id"], str) or not m["user_id"]:
        raise BadInputError("must be a non-empty string", path=path, line=lineno, field=f"{where}.user_id")
    if m["text"] is not None and not isinstance(m["text"], str):
        raise BadInputError(f"must be a string or null, got {type(m['text']).__name__}", path=path, line=lineno,
                            field=f"{where}.text")
    t = m["relative_integer_time"]
    if isinstance(t, bool) or not isinstance(t, int) or t < 0:
        raise BadInputError(f"must be a non-negative integer, got {t!r}", path=path, line=lineno,
                            field=f"{where}.relative_integer_time")
    flags = m["actions"]
    if not last:
        if flags is not None:
            raise BadInputError("only the last message of a thread carries actions; expected null", path=path,
                                line=lineno, field=f"{where}.actions")
        return
    if not isinstance(flags, dict):
        raise BadInputError("the last message must carry its 13 action flags", path=path, line=lineno,
                            field=f"{where}.actions")
    missing = [a for a in ACTIONS if a not in flags]
    unknown = sorted(set(flags) - set(ACTIONS))
    if missing or unknown:
        raise BadInputError(f"expected the 13 flags {list(ACTIONS)}; missing {missing}, unknown {unknown}", path=path,
                            line=lineno, field=f"{where}.actions")
    bad = [a for a in ACTIONS if not isinstance(flags[a], bool)]
    if bad:
        raise BadInputError(f"must be true or false, got {flags[bad[0]]!r}", path=path, line=lineno,
                            field=f"{where}.actions.{bad[0]}")
    chosen = [a for a in ACTIONS if flags[a]]
    if len(chosen) != 1:
        raise BadInputError(f"exactly one flag must be true, found {chosen}", path=path, line=lineno,
                            field=f"{where}.actions")
    text = m["text"]
    if chosen[0] in TEXT_ACTIONS and (text is None or not text.strip()):
        raise BadInputError(f"a {chosen[0]} needs its text", path=path, line=lineno, field=f"{where}.text")
    if chosen[0] not in TEXT_ACTIONS and text is not None:
        raise BadInputError(f"a {chosen[0]} carries no text; expected null", path=path, line=lineno,
                            field=f"{where}.text")


def release_row(obj, cluster: int, k: int, path: PathLike, lineno: int, ignored: Counter | None = None) -> dict:
    """One checked line of ``cluster_{cluster}.jsonl`` (of a partition of ``k`` clusters) as a BluePrint row; keys
    the format does not have are counted in ``ignored``."""
    ignored = ignored if ignored is not None else Counter()
    if not isinstance(obj, dict):
        raise BadInputError(f"expected a JSON object, got {type(obj).__name__}", path=path, line=lineno)
    for key in obj.keys() - {"thread", "cluster_id"}:
        ignored[key] += 1
    thread = obj.get("thread")
    if not isinstance(thread, list) or not thread:
        raise BadInputError("expected a non-empty list of messages", path=path, line=lineno, field="thread")
    for j, m in enumerate(thread):
        _check_message(m, f"thread[{j}]", j == len(thread) - 1, path, lineno, ignored)
    cid = obj.get("cluster_id", cluster)
    if isinstance(cid, bool) or not isinstance(cid, int) or cid != cluster:
        raise BadInputError(f"{cid!r} is not this file's cluster ({cluster} of 0..{k - 1})", path=path, line=lineno,
                            field="cluster_id")
    action = next(a for a in ACTIONS if thread[-1]["actions"][a])
    msgs = [{"user_id": m["user_id"], "text": m["text"], "relative_integer_time": m["relative_integer_time"],
             "actions": None if m["actions"] is None else {a: m["actions"][a] for a in ACTIONS}} for m in thread]
    return {"id": content_id(action, [(m["relative_integer_time"], m["text"]) for m in msgs]), "thread": msgs,
            "cluster_id": cluster, "action": ACTIONS.index(action),
            "target_text": msgs[-1]["text"] if action in TEXT_ACTIONS else None}
