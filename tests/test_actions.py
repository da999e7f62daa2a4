from __future__ import annotations

from collections import Counter

import orjson
import pytest

import blueprint
from blueprint.actions import ACTIONS, TEXT_ACTIONS, action_of, classify


def _actions(path):
    return Counter(action_of(orjson.loads(line)) for line in path.read_bytes().splitlines() if line.strip())


def test_thirteen_actions_in_fixed_order():
    assert blueprint.ACTIONS == ACTIONS
    assert ACTIONS == ("post", "reply", "quote", "post_update", "post_delete", "like", "unlike", "repost",
                       "unrepost", "follow", "unfollow", "block", "unblock")
    assert TEXT_ACTIONS == {"post", "reply", "quote", "post_update"}


def test_real_jetstream_capture_counts(real_data):
    counts = _actions(real_data / "jetstream_corpus_expected_v1.jsonl")
    assert sum(counts.values()) == 152
    # 17 post creates, of which 8 are replies and none quotes
    assert counts["post"] + counts["reply"] + counts["quote"] == 17
    assert counts["reply"] == 8
    assert counts["quote"] == 0
    assert counts["like"] == 105
    assert counts["repost"] == 15
    assert counts["follow"] == 6
    assert counts["unfollow"] == 3
    assert counts["block"] == 1
    assert counts["post_delete"] == 1
    # identity, account, the two status updates (not Bluesky posts) and other apps: no action
    assert counts[None] == 152 - 105 - 15 - 17 - 6 - 3 - 1 - 1
    assert set(counts) - {None} <= set(ACTIONS)


def test_real_golden_events(real_data):
    lines = (real_data / "jetstream_subscribe_golden_v1.jsonl").read_bytes().splitlines()
    events = [orjson.loads(line) for line in lines]
    got = [action_of(e) for e in events]
    by_kind = {}
    for e, a in zip(events, got):
        key = e["kind"] if e["kind"] != "commit" else e["commit"]["collection"]
        by_kind.setdefault(key, []).append(a)
    assert by_kind["app.bsky.feed.like"] == ["like"]
    assert by_kind["app.bsky.feed.post"] == ["reply"]
    assert by_kind["app.bsky.feed.repost"] == ["repost"]
    assert by_kind["app.bsky.graph.follow"] == ["follow"]
    assert by_kind["app.bsky.graph.block"] == ["block"]
    assert by_kind["app.bsky.actor.profile"] == [None]
    assert by_kind["identity"] == [None] and by_kind["account"] == [None]
    # non-Bluesky commits yield nothing, whatever their operation
    assert by_kind["org.hypercerts.claim.activity"] == [None]
    assert by_kind["place.stream.broadcast.origin"] == [None]


def _commit(collection, operation, record=None):
    commit = {"rev": "r", "operation": operation, "collection": collection, "rkey": "k"}
    if record is not None:
        commit["record"] = record
    return {"did": "did:plc:x", "time_us": 1, "kind": "commit", "commit": commit}


REF = {"uri": "at://did:plc:y/app.bsky.feed.post/z", "cid": "c"}


@pytest.mark.parametrize(
    "event, expected",
    [
        (_commit("app.bsky.feed.post", "create", {"text": "hi"}), "post"),
        (_commit("app.bsky.feed.post", "create", {"text": "hi", "reply": {"parent": REF, "root": REF}}), "reply"),
        (_commit("app.bsky.feed.post", "create", {"text": "q", "embed": {"$type": "app.bsky.embed.record",
                                                                           "record": REF}}), "quote"),
        (_commit("app.bsky.feed.post", "create", {"text": "q", "embed": {
            "$type": "app.bsky.embed.recordWithMedia", "media": {}, "record": {"record": REF}}}), "quote"),
        (_commit("app.bsky.feed.post", "create", {"text": "i", "embed": {"$type": "app.bsky.embed.images",
                                                                           "images": []}}), "post"),
        # a reply that quotes stays a reply
        (_commit("app.bsky.feed.post", "create", {"text": "r", "reply": {"parent": REF, "root": REF},
                                                 "embed": {"$type": "app.bsky.embed.record", "record": REF}}), "reply"),
        (_commit("app.bsky.feed.post", "update", {"text": "e"}), "post_update"),
        (_commit("app.bsky.feed.post", "delete"), "post_delete"),
        (_commit("app.bsky.feed.like", "create", {"subject": REF}), "like"),
        (_commit("app.bsky.feed.like", "delete"), "unlike"),
        (_commit("app.bsky.feed.repost", "create", {"subject": REF}), "repost"),
        (_commit("app.bsky.feed.repost", "delete"), "unrepost"),
        (_commit("app.bsky.graph.follow", "create", {"subject": "did:plc:y"}), "follow"),
        (_commit("app.bsky.graph.follow", "delete"), "unfollow"),
        (_commit("app.bsky.graph.block", "create", {"subject": "did:plc:y"}), "block"),
        (_commit("app.bsky.graph.block", "delete"), "unblock"),
        (_commit("app.bsky.feed.like", "update", {"subject": REF}), None),
        (_commit("app.bsky.feed.post", "create"), None),  # a create without its record
        (_commit("app.bsky.graph.listitem", "create", {"subject": "did:plc:y"}), None),
        ({"did": "did:plc:x", "time_us": 1, "kind": "identity", "identity": {}}, None),
        ({"did": "did:plc:x", "time_us": 1, "kind": "commit", "commit": "oops"}, None),
    ],
)
def test_mapping_table(event, expected):
    assert action_of(event) == expected


def test_action_of_is_pure():
    event = _commit("app.bsky.feed.post", "create", {"text": "hi", "reply": {"parent": REF, "root": REF}})
    before = orjson.dumps(event)
    assert action_of(event) == action_of(event) == "reply"
    assert orjson.dumps(event) == before


def test_every_action_reachable_through_classify():
    seen = {classify(c, o, is_reply=r, quotes=q)
            for c in ("app.bsky.feed.post", "app.bsky.feed.like", "app.bsky.feed.repost",
                      "app.bsky.graph.follow", "app.bsky.graph.block")
            for o in ("create", "update", "delete") for r in (False, True) for q in (False, True)}
    assert seen - {None} == set(ACTIONS)
