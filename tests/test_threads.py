from __future__ import annotations

import random

import orjson
import pytest
from helpers import commit, post, uri, write_lines

from blueprint.simpact.ingest import ingest
from blueprint.simpact.threads import ThreadConfig, build_threads, default_keywords, keyword_pattern, read_threads

A, B, C = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb", "did:plc:cccccccccccccccccccccccc"
LIKE, REPOST = "app.bsky.feed.like", "app.bsky.feed.repost"
FOLLOW, BLOCK = "app.bsky.graph.follow", "app.bsky.graph.block"
OPEN = ThreadConfig(langs=None, topics=None, min_user_posts=0)


def run(tmp_path, events, cfg=OPEN, raw=()):
    path = write_lines(tmp_path / "in.jsonl", events, raw)
    ingest([path], tmp_path / "ing")
    report = build_threads(tmp_path / "ing", tmp_path / "thr", cfg)
    rows = read_threads(tmp_path / "thr").to_pylist()
    assert report.events == sum(report.examples.values()) + sum(report.skipped.values()) + sum(
        report.quarantined.values()), "every event must land in exactly one bucket"
    return report, rows


def texts(row):
    return [m["text"] for m in row["messages"]]


def by_action(rows, action):
    return [r for r in rows if r["action"] == action]


def test_reply_chain_with_depth_cap(tmp_path):
    events = [post(A, 1, "p0", "t0")]
    for i in range(1, 8):
        parent = uri(A if (i - 1) % 2 == 0 else B, f"p{i-1}")
        events.append(post(A if i % 2 == 0 else B, 1 + i, f"p{i}", f"t{i}", parent=parent, root=uri(A, "p0")))
    _, rows = run(tmp_path, events, ThreadConfig(langs=None, topics=None, min_user_posts=0, max_depth=5))
    last = [r for r in rows if r["messages"][-1]["text"] == "t7"][0]
    assert last["action"] == "reply" and texts(last) == ["t3", "t4", "t5", "t6", "t7"]
    assert all(len(r["messages"]) <= 5 for r in rows)
    first = [r for r in rows if texts(r) == ["t0"]][0]
    assert first["action"] == "post"


def test_reactions_resolve_unlike_and_unrepost_through_the_record_key(tmp_path):
    events = [
        post(A, 1, "p1", "the post"),
        commit(B, 2, LIKE, "create", "l1", {"subject": {"uri": uri(A, "p1"), "cid": "c"}}),
        commit(B, 3, REPOST, "create", "r1", {"subject": {"uri": uri(A, "p1"), "cid": "c"}}),
        commit(B, 4, LIKE, "delete", "l1"),
        commit(B, 5, REPOST, "delete", "r1"),
        commit(C, 6, LIKE, "delete", "never-seen"),
        post(C, 7, "q1", "quoting", quote=uri(A, "p1")),
    ]
    report, rows = run(tmp_path, events)
    for action in ("like", "repost", "unlike", "unrepost"):
        (row,) = by_action(rows, action)
        assert texts(row) == ["the post", None]
        assert row["messages"][-1]["did"] == B
    (q,) = by_action(rows, "quote")
    assert texts(q) == ["the post", "quoting"]
    assert report.skipped["unlike_unresolved"] == 1


def test_follow_and_block_context_is_the_targets_latest_earlier_post(tmp_path):
    events = [
        post(B, 1, "b1", "old"),
        post(B, 2, "b2", "latest"),
        commit(A, 3, FOLLOW, "create", "f1", {"subject": B}),
        post(B, 4, "b3", "after the follow"),
        commit(A, 5, BLOCK, "create", "k1", {"subject": B}),
        commit(A, 6, FOLLOW, "delete", "f1"),
        commit(A, 7, BLOCK, "delete", "k1"),
        commit(A, 8, FOLLOW, "create", "f2", {"subject": C}),  # C never posted
    ]
    report, rows = run(tmp_path, events)
    assert texts(by_action(rows, "follow")[0]) == ["latest", None]
    assert texts(by_action(rows, "block")[0]) == ["after the follow", None]
    assert texts(by_action(rows, "unfollow")[0]) == ["after the follow", None]
    assert texts(by_action(rows, "unblock")[0]) == ["after the follow", None]
    assert report.skipped["target_has_no_post"] == 1


def test_updates_and_deletes_carry_the_original(tmp_path):
    events = [
        post(A, 1, "p1", "first version"),
        commit(A, 2, "app.bsky.feed.post", "update", "p1", {"text": "second version", "langs": ["en"]}),
        commit(A, 3, "app.bsky.feed.post", "delete", "p1"),
        commit(A, 4, "app.bsky.feed.post", "delete", "ghost"),
        commit(A, 5, "app.bsky.feed.post", "update", "ghost2", {"text": "x", "langs": ["en"]}),
    ]
    report, rows = run(tmp_path, events)
    assert texts(by_action(rows, "post_update")[0]) == ["first version", "second version"]
    assert texts(by_action(rows, "post_delete")[0]) == ["second version", None]
    assert report.skipped["post_delete_unseen"] == 1 and report.skipped["post_update_unseen"] == 1


def test_out_of_order_arrival_gives_the_same_threads(tmp_path):
    events = [post(A, 1, "p1", "root")]
    for i in range(2, 40):
        parent = uri(A if i % 2 else B, f"p{i-1}") if i > 2 else uri(A, "p1")
        events.append(post(B if i % 2 else A, i, f"p{i}", f"t{i}", parent=parent))
        subject = {"subject": {"uri": uri(B if i % 2 else A, f"p{i}"), "cid": "c"}}
        events.append(commit(C, 1000 + i, LIKE, "create", f"l{i}", subject))
    _, ordered = run(tmp_path / "a", events)
    shuffled = list(events)
    random.Random(3).shuffle(shuffled)
    _, mixed = run(tmp_path / "b", shuffled)
    key = lambda r: r["key"]  # noqa: E731
    strip = lambda rows: [{k: v for k, v in r.items() if k not in ("line", "src")} for r in sorted(rows, key=key)]  # noqa: E731
    assert strip(ordered) == strip(mixed)


def test_cycles_and_self_references_are_quarantined_with_file_and_line(tmp_path):
    events = [
        post(A, 1, "s1", "me", parent=uri(A, "s1")),           # self-reference
        post(A, 2, "c1", "one", parent=uri(A, "c2")),          # c1 -> c2 -> c1
        post(A, 3, "c2", "two", parent=uri(A, "c1")),
        post(B, 4, "ok", "fine"),
    ]
    report, rows = run(tmp_path, events)
    assert report.quarantined == {"reply_self_reference": 1, "reply_cycle": 1}
    q = [orjson.loads(x) for x in (tmp_path / "thr" / "quarantine.jsonl").read_bytes().splitlines()]
    assert {(x["line"], x["reason"]) for x in q} == {(1, "reply_self_reference"), (3, "reply_cycle")}
    assert all(x["file"].endswith("in.jsonl") for x in q)
    assert report.skipped["reply_parent_unseen"] == 1  # c1's parent did not exist yet when it arrived


def test_only_in_scope_users_make_examples(tmp_path):
    events = [post(A, 1, "a1", "carbon tax is a scam"), post(A, 2, "a2", "vote in the election"),
              post(B, 3, "b1", "my cat"),
              commit(B, 4, LIKE, "create", "l1", {"subject": {"uri": uri(A, "a1"), "cid": "c"}})]
    report, rows = run(tmp_path, events, ThreadConfig(min_user_posts=2))
    assert {r["did"] for r in rows} == {A}
    assert report.skipped["actor_out_of_scope"] == 2
    assert report.filters["scope"] == {"min_user_posts": 2, "users_seen": 2, "users_in_scope": 1}


def test_language_and_topic_filters_are_counted(tmp_path):
    events = [
        post(A, 1, "a1", "The carbon tax again."),
        post(A, 2, "a2", "Poilievre at the debate tonight."),
        post(A, 3, "a3", "Le Bloc au débat.", langs=("fr",)),
        post(A, 4, "a4", "Made soup today."),
        post(A, 5, "a5", "No language tag on the election", langs=None),
        post(B, 6, "b1", "Reply in French", parent=uri(A, "a3"), langs=("fr",)),
        post(B, 7, "b2", "English reply to a French post about the election", parent=uri(A, "a3")),
        post(B, 8, "b3", "Agreed on the carbon tax", parent=uri(A, "a1")),
        post(B, 9, "b4", "My garden", parent=uri(A, "a4")),
    ]
    report, rows = run(tmp_path, events, ThreadConfig(min_user_posts=1))
    kept = sorted(texts(r)[-1] for r in rows)
    assert kept == ["Agreed on the carbon tax", "Poilievre at the debate tonight.", "The carbon tax again."]
    assert report.skipped["language"] == 4  # a3, a5, b1, and b2 whose parent is French
    assert report.skipped["off_topic"] == 2  # a4 and b4
    f = report.filters
    assert f["language"]["posts_and_replies"] == 9 and f["language"]["kept"] == 6
    assert f["topic"]["kept"] == 4


def test_post_thread_depth_cap_on_real_data(tmp_path, real_data):
    ingest([real_data / "atprotodart_getPostThread.json"], tmp_path / "ing")
    open_cfg = dict(langs=None, topics=None, min_user_posts=0)
    build_threads(tmp_path / "ing", tmp_path / "t5", ThreadConfig(max_depth=5, **open_cfg))
    rows5 = read_threads(tmp_path / "t5").to_pylist()
    assert len(rows5) == 57  # the oldest post's parent is outside the response
    assert max(len(r["messages"]) for r in rows5) == 5
    build_threads(tmp_path / "ing", tmp_path / "t100", ThreadConfig(max_depth=100, **open_cfg))
    rows100 = read_threads(tmp_path / "t100").to_pylist()
    anchor = orjson.loads((real_data / "atprotodart_getPostThread.json").read_bytes())["thread"]["post"]["uri"]
    (row,) = [r for r in rows100 if r["messages"][-1]["uri"] == anchor]
    assert len(row["messages"]) == 54  # the 53-deep parent chain, then the anchor post
    assert max(len(r["messages"]) for r in rows100) == 55  # a reply to the anchor


def test_keyword_lists():
    words = default_keywords()
    assert len(words) > 150 and "poilievre" in words and "cdnpoli" in words
    rx = keyword_pattern(["tariff*", "carbon tax", "ndp"])
    assert rx.search("New TARIFFS announced")
    assert rx.search("#NDP rally")
    assert rx.search("the Carbon Tax debate")
    assert not rx.search("independent voices")  # whole words only
    assert not rx.search("carbon taxation")


def test_keyword_file_errors(tmp_path):
    from blueprint.errors import BadInputError
    from blueprint.simpact.threads import read_keywords

    f = tmp_path / "k.txt"
    f.write_text("# a comment\n#cdnpoli\nelection\n\n")
    assert read_keywords(f) == ("cdnpoli", "election")
    f.write_text("# only comments\n")
    with pytest.raises(BadInputError, match="empty"):
        read_keywords(f)
    with pytest.raises(BadInputError, match="no such keyword file"):
        read_keywords(tmp_path / "missing.txt")
