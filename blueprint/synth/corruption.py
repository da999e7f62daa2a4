"""Malformed lines mixed into the corpus (``corrupt_rate``), each listed with its kind in ``_meta``.

The valid stream is never altered: a corruption is a line inserted after a valid one.
Kinds: a truncated line, invalid UTF-8, a missing or a mistyped field, something that
is not a JSON object, a post that replies to itself, and two posts that reply to each
other (a cycle).
"""

from __future__ import annotations

import random

import orjson

from blueprint.actions import POST
from blueprint.atproto import cid_of, tid
from blueprint.synth.world import Line, World, iso_time

CORRUPTIONS = ("truncated", "invalid_utf8", "missing_field", "mistyped_field", "not_json", "self_reply",
               "reply_cycle")


def corrupt(rng: random.Random, line: Line, world: World) -> list[Line]:
    """Malformed lines to insert after ``line``; the valid stream is never altered."""
    kind = rng.choice(CORRUPTIONS)
    raw = orjson.dumps(line.event) if line.event is not None else b"{}"
    t = line.time_us
    if kind == "truncated":
        out = [raw[: rng.randint(1, len(raw) - 1)]]
    elif kind == "invalid_utf8":
        cut = rng.randint(1, len(raw) - 2)
        out = [raw[:cut] + b"\xff\xfe" + raw[cut:]]
    elif kind == "missing_field":
        event = orjson.loads(raw)
        if event.get("kind") == "commit" and rng.random() < 0.5:
            del event["commit"][rng.choice(["collection", "rkey", "operation"])]
        else:
            del event[rng.choice(["did", "time_us", "kind"])]
        out = [orjson.dumps(event)]
    elif kind == "mistyped_field":
        event = orjson.loads(raw)
        choice = rng.random()
        if choice < 0.4:
            event["time_us"] = str(event["time_us"])
        elif choice < 0.7 and event.get("kind") == "commit":
            event["commit"] = [event["commit"]]
        else:
            event["did"] = 12345
        out = [orjson.dumps(event)]
    elif kind == "not_json":
        out = [rng.choice((b"<html>502 Bad Gateway</html>", b"null", b"[1, 2, 3]", b"\x00\x01\x02", b"{{}"))]
    elif kind == "self_reply":
        user = world.users[rng.randrange(len(world.users))]
        rkey = tid(t - 1, 1023)
        uri = f"at://{user.did}/{POST}/{rkey}"
        ref = {"cid": cid_of(uri), "uri": uri}
        record = {"$type": POST, "createdAt": iso_time(t), "langs": ["en"], "text": "Replying to myself.",
                  "reply": {"parent": ref, "root": ref}}
        event = {"did": user.did, "time_us": t, "kind": "commit",
                 "commit": {"rev": tid(t, 1023), "operation": "create", "collection": POST, "rkey": rkey,
                            "record": record, "cid": ref["cid"]}}
        out = [orjson.dumps(event)]
    else:  # reply_cycle: two posts, each the other's parent
        user = world.users[rng.randrange(len(world.users))]
        rkeys = [tid(t - 2, 1022), tid(t - 3, 1022)]
        uris = [f"at://{user.did}/{POST}/{r}" for r in rkeys]
        out = []
        for i in (0, 1):
            ref = {"cid": cid_of(uris[1 - i]), "uri": uris[1 - i]}
            record = {"$type": POST, "createdAt": iso_time(t), "langs": ["en"], "text": "Round and round.",
                      "reply": {"parent": ref, "root": ref}}
            event = {"did": user.did, "time_us": t, "kind": "commit",
                     "commit": {"rev": tid(t, 1022 - i), "operation": "create", "collection": POST,
                                "rkey": rkeys[i], "record": record, "cid": cid_of(uris[i])}}
            out.append(orjson.dumps(event))
    return [Line(t, None, raw=r, corruption=kind) for r in out]

