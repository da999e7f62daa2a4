"""The out-of-core threads stage against the in-memory replay it replaced (tests/thread_replay.py).

Both read the same ingest output; rows, user texts, quarantine and report must be equal,
on the real records, on a synthetic corpus, and on adversarial event streams full of
duplicates, cycles, updates, deletes, undos and references to records never seen.
"""

from __future__ import annotations

import random

import orjson
import pyarrow.parquet as pq
import pytest
from helpers import POST, commit, post, uri, write_lines
from thread_replay import replay

from blueprint.simpact.ingest import IngestConfig, ingest
from blueprint.simpact.threads import ThreadConfig, build_threads, read_threads

LIKE, REPOST = "app.bsky.feed.like", "app.bsky.feed.repost"
FOLLOW, BLOCK = "app.bsky.graph.follow", "app.bsky.graph.block"
CONFIGS = {
    "open": ThreadConfig(langs=None, topics=None, min_user_posts=0),
    "paper": ThreadConfig(),
    "deep": ThreadConfig(langs=("en",), topics=("vote", "tax*", "one"), min_user_posts=1, max_depth=9),
    "shallow": ThreadConfig(langs=None, topics=None, min_user_posts=2, max_depth=2),
}


def assert_same(events_dir, out, cfg, memory_limit="1GB"):
    report = build_threads(events_dir, out, cfg, memory_limit=memory_limit)
    rows, texts, quarantine, ref_report = replay(events_dir, cfg)
    assert read_threads(out).to_pylist() == rows
    assert pq.read_table(out / "user_texts.parquet").to_pylist() == texts
    assert [orjson.loads(x) for x in (out / "quarantine.jsonl").read_bytes().splitlines()] == quarantine
    assert report.to_dict() == ref_report
    assert not list(out.glob("_threads*")), "the stage's DuckDB files must be gone"
    return rows


def adversarial(seed: int, n: int = 600) -> list[dict]:
    """Events drawn to hit every rule: few users and rkeys, so duplicates and collisions are common."""
    rng = random.Random(seed)
    dids = [f"did:plc:{c * 24}" for c in "abcde"]
    words = ["vote", "taxes", "one", "cats", "rain", "the", "election"]
    events: list[dict] = []
    for _ in range(n):
        t = rng.randint(1, n // 3)  # many ties in time: the order falls back to the line
        did = rng.choice(dids)
        rkey = f"r{rng.randint(0, 40)}"
        target = uri(rng.choice(dids), f"r{rng.randint(0, 40)}")
        text = " ".join(rng.choice(words) for _ in range(rng.randint(0, 3)))
        langs = rng.choice([("en",), ("fr",), None, ("en", "fr")])
        kind = rng.random()
        if kind < 0.25:
            events.append(post(did, t, rkey, text, langs=langs))
        elif kind < 0.5:
            parent = uri(did, rkey) if rng.random() < 0.05 else target
            events.append(post(did, t, rkey, text, parent=parent, langs=langs))
        elif kind < 0.57:
            events.append(post(did, t, rkey, text, quote=target, langs=langs))
        elif kind < 0.63:
            record = {"text": text, **({"langs": list(langs)} if langs else {})}
            events.append(commit(did, t, POST, "update", rkey, record))
        elif kind < 0.69:
            events.append(commit(did, t, POST, "delete", rkey))
        else:
            coll = rng.choice([LIKE, REPOST, FOLLOW, BLOCK])
            key = f"k{rng.randint(0, 12)}"
            if rng.random() < 0.35:
                events.append(commit(did, t, coll, "delete", key))
            elif coll in (LIKE, REPOST):
                events.append(commit(did, t, coll, "create", key, {"subject": {"uri": target, "cid": "c"}}))
            else:
                events.append(commit(did, t, coll, "create", key, {"subject": rng.choice(dids)}))
    return events


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("name", list(CONFIGS))
def test_adversarial_streams(tmp_path, seed, name):
    path = write_lines(tmp_path / "in.jsonl", adversarial(seed))
    ingest([path], tmp_path / "ing", IngestConfig(workers=1))
    rows = assert_same(tmp_path / "ing", tmp_path / "thr", CONFIGS[name])
    if name == "open":
        assert len(rows) > 50


def test_cycles_deeper_than_one_step(tmp_path):
    # c1 -> c2 -> c3 -> c1: c3 closes the loop three steps up; with max_depth 2 the walk stops first
    events = [post("did:plc:" + "a" * 24, i + 1, f"c{i + 1}", "vote", parent=uri("did:plc:" + "a" * 24,
                                                                                   f"c{(i + 1) % 3 + 1}"))
              for i in range(3)]
    path = write_lines(tmp_path / "in.jsonl", events)
    ingest([path], tmp_path / "ing", IngestConfig(workers=1))
    assert_same(tmp_path / "ing", tmp_path / "a", CONFIGS["open"])
    assert_same(tmp_path / "ing", tmp_path / "b", CONFIGS["shallow"])
    q = (tmp_path / "a" / "quarantine.jsonl").read_bytes()
    assert b"reply_cycle" in q and b"reply_cycle" not in (tmp_path / "b" / "quarantine.jsonl").read_bytes()


@pytest.mark.parametrize("name", ["open", "paper"])
def test_real_records(tmp_path, real_data, name):
    ingest([real_data], tmp_path / "ing", IngestConfig(workers=1))
    assert_same(tmp_path / "ing", tmp_path / "thr", CONFIGS[name])


def test_synthetic_corpus_under_a_small_memory_limit(tmp_path, corpus):
    ingest([corpus], tmp_path / "ing", IngestConfig(workers=1))
    rows = assert_same(tmp_path / "ing", tmp_path / "thr", CONFIGS["paper"], memory_limit="256MB")
    assert len(rows) > 500


def test_no_events(tmp_path):
    (tmp_path / "ing").mkdir()
    assert_same(tmp_path / "ing", tmp_path / "thr", CONFIGS["paper"])
