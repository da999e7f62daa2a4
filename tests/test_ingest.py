from __future__ import annotations

import gzip
import shutil
from collections import Counter

import orjson
import pyarrow.parquet as pq
import pytest
from helpers import commit, post, write_lines

from blueprint.errors import BadInputError
from blueprint.simpact.ingest import EVENT_SCHEMA, IngestConfig, decode_jetstream, ingest, plan, read_events


def _accounted(t: dict) -> None:
    """Every line went to exactly one place."""
    assert t["lines"] == t["blank"] + t["events"] + t["no_action"] + t["quarantined"]


def test_real_jetstream_capture(tmp_path, real_data):
    r = ingest([real_data / "jetstream_corpus_expected_v1.jsonl"], tmp_path / "out").totals()
    _accounted(r)
    assert r["lines"] == 152
    assert r["events_by_action"] == {"like": 105, "repost": 15, "post": 9, "reply": 8, "follow": 6,
                                     "unfollow": 3, "block": 1, "post_delete": 1}
    assert r["no_action_by_reason"] == {"identity": 1, "account": 1, "other_collection": 2}
    assert r["quarantined"] == 0
    events = read_events(tmp_path / "out")
    assert events.schema == EVENT_SCHEMA
    assert events.num_rows == 148


def test_real_repository_exports(tmp_path, real_data):
    r = ingest([real_data / "shrike_calabro.car"], tmp_path / "shrike")
    t = r.totals()
    _accounted(t)
    assert t["lines"] == 4347  # every record of the repository
    a = t["events_by_action"]
    assert a["post"] + a["reply"] + a["quote"] == 610
    assert a["reply"] == 417 and a["quote"] == 30
    assert (a["like"], a["repost"], a["follow"], a["block"]) == (2312, 175, 663, 87)
    ev = read_events(tmp_path / "shrike")
    assert set(ev["did"].to_pylist()) == {"did:plc:4uz2445cjiw7w4nobfgnu35f"}
    assert min(ev["time_us"].to_pylist()) > 1_600_000_000_000_000  # createdAt, in microseconds
    t2 = ingest([real_data / "atprotodart_repo.car"], tmp_path / "dart").totals()
    _accounted(t2)
    assert t2["lines"] == 2836
    assert t2["events_by_action"]["follow"] == 2718


def test_real_post_thread(tmp_path, real_data):
    t = ingest([real_data / "atprotodart_getPostThread.json"], tmp_path / "out").totals()
    _accounted(t)
    assert t["events"] == 58 and t["events_by_action"] == {"reply": 58}
    assert t["no_action_by_reason"] == {"blocked_post": 1}
    ev = read_events(tmp_path / "out")
    assert len(set(ev["did"].to_pylist())) == 31


def test_folder_tree_skips_metadata_and_lists_unknown_files(tmp_path, real_data):
    root = tmp_path / "raw"
    for name in ("jetstream_corpus_expected_v1.jsonl", "README.md"):
        (root / "bluesky-2025-03" / "01" / "00").mkdir(parents=True, exist_ok=True)
        shutil.copy(real_data / name, root / "bluesky-2025-03" / "01" / "00" / name)
    (root / "_meta").mkdir()
    shutil.copy(real_data / "jetstream_corpus_expected_v1.jsonl", root / "_meta" / "ignored.jsonl")
    r = ingest([root], tmp_path / "out")
    assert r.totals()["files"] == 1 and r.skipped_files == [str(root / "bluesky-2025-03/01/00/README.md")]


@pytest.mark.parametrize("compress", ["gz", "zst"])
def test_compressed_inputs_give_the_same_events(tmp_path, compress, make_corpus):
    plain = make_corpus(users=30, seed=4, days=0.5)
    packed = make_corpus(users=30, seed=4, days=0.5, compress=compress)
    a = read_events(_ingested(plain, tmp_path / "a")).drop_columns(["src"])
    b = read_events(_ingested(packed, tmp_path / "b")).drop_columns(["src"])
    assert a.equals(b) and a.num_rows > 500
    assert len(list(plain.rglob("jetstream*.jsonl"))) == len(list(packed.rglob(f"jetstream*.jsonl.{compress}")))


def _ingested(src, out, **cfg):
    ingest([src], out, IngestConfig(**cfg))
    return out


BAD_LINES = [
    (b'{"did":"did:plc:a","time_us":1,"kind":"commit","commit":{"rev":"r","operation":"create","coll', "truncated",
     None),
    (b'{"did":"did:plc:a\xff","time_us":1,"kind":"identity"}', "invalid_utf8", None),
    (b"<html>502</html>", "invalid_json", None),
    (b"[1, 2]", "not_an_object", "$"),
    (b'{"time_us":1,"kind":"identity"}', "missing_field", "$.did"),
    (b'{"did":"did:plc:a","time_us":"1","kind":"identity"}', "mistyped_field", "$.time_us"),
    (b'{"did":"did:plc:a","time_us":1,"kind":"commit","commit":{"operation":"create","collection":"app.bsky.feed.post","rkey":"k"}}',
     "missing_field", "$.commit.record"),
    (b'{"did":"did:plc:a","time_us":1,"kind":"commit","commit":{"operation":"create","collection":"app.bsky.feed.post","rkey":"k","record":{"text":5}}}',
     "mistyped_field", "$.commit.record.text"),
    (b'{"did":"did:plc:a","time_us":1,"kind":"commit","commit":{"operation":"create","collection":"app.bsky.feed.like","rkey":"k","record":{"subject":"x"}}}',
     "mistyped_field", "$.commit.record.subject"),
    (b'{"did":"did:plc:a","time_us":1,"kind":"commit","commit":{"operation":"create","collection":"app.bsky.graph.follow","rkey":"k","record":{"subject":"bob"}}}',
     "mistyped_field", "$.commit.record.subject"),
    (b'{"did":"alice","time_us":1,"kind":"identity"}', "mistyped_field", "$.did"),
    (b'{"did":"did:plc:a","time_us":1,"kind":"commit","commit":{"operation":"create","collection":"app.bsky.feed.post","rkey":"k","record":{"text":"\\ud800"}}}',
     "invalid_utf8", None),
]


def test_bad_lines_are_quarantined_with_file_line_and_field(tmp_path):
    good = [post("did:plc:a", 10, "p1", "hello"),
            commit("did:plc:a", 11, "app.bsky.actor.profile", "update", "self", {})]
    path = write_lines(tmp_path / "in.jsonl", good, [raw for raw, _, _ in BAD_LINES] + [b"", b"   "])
    r = ingest([path], tmp_path / "out").totals()
    _accounted(r)
    assert r["events"] == 1 and r["no_action_by_reason"] == {"other_collection": 1} and r["blank"] == 2
    want = Counter(reason for _, reason, _ in BAD_LINES)
    assert r["quarantined_by_reason"] == dict(want)
    rows = [orjson.loads(x) for x in (tmp_path / "out" / "quarantine.jsonl").read_bytes().splitlines()]
    assert [(q["line"], q["reason"], q["field"]) for q in rows] == [
        (i + 3, reason, fld) for i, (_, reason, fld) in enumerate(BAD_LINES)]
    assert all(q["file"] == str(path) for q in rows)


# what each kind of planted damage must read as (reply cycles and self-replies are valid lines: threads see them)
DAMAGE = {"missing_field": {"missing_field"}, "mistyped_field": {"mistyped_field"}, "invalid_utf8": {"invalid_utf8"},
          "truncated": {"truncated"}, "not_json": {"invalid_json", "not_an_object"}, "reply_cycle": None,
          "self_reply": None}


def test_every_line_corrupt_ones_included_decodes_to_its_expected_outcome(corpus):
    """Every synthetic line is checked: a planted corrupt line is refused with the reason its damage names; every
    other line decodes, and the one-step fast path agrees with the two-step precise path."""
    from blueprint.simpact.ingest import records as mod

    planted = {(r["file"], r["line"]): r["kind"] for r in map(orjson.loads, (
        corpus / "_meta" / "corrupt_lines.jsonl").read_bytes().splitlines())}
    assert set(planted.values()) >= {"missing_field", "mistyped_field", "invalid_utf8", "truncated", "not_json"}
    checked = Counter()
    for f in sorted((corpus).rglob("*.jsonl")):
        if "_meta" in f.parts:
            continue
        rel = str(f.relative_to(corpus))
        for lineno, raw in enumerate(f.read_bytes().splitlines(), start=1):
            kind = planted.get((rel, lineno))
            try:
                fast = decode_jetstream(raw)
            except mod.BadLine as bad:
                assert kind is not None and DAMAGE[kind] and bad.reason in DAMAGE[kind], (rel, lineno, kind,
                                                                                          bad.reason)
                checked["refused"] += 1
                continue
            assert kind is None or DAMAGE[kind] is None, (rel, lineno, kind, "was not refused")
            ev = mod._EVENT.decode(raw)
            slow = ev.kind if ev.kind != "commit" else mod.record_row(
                ev.did, ev.time_us, ev.commit.collection, ev.commit.operation, ev.commit.rkey, ev.commit.record,
                "$.commit.record")
            if isinstance(slow, str) and slow not in ("identity", "account", "other_collection",
                                                      "unmapped_operation"):
                slow = "other_kind"
            assert fast == slow, raw
            checked["decoded"] += 1
    refusable = sum(1 for k in planted.values() if DAMAGE[k])
    assert checked["refused"] == refusable and checked["decoded"] > 1000


def test_truncated_archive_keeps_what_was_read(tmp_path):
    path = write_lines(tmp_path / "in.jsonl", [post("did:plc:a", i, f"p{i}", "x" * 200) for i in range(1, 400)])
    data = gzip.compress(path.read_bytes())
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(data[: len(data) * 2 // 3])
    r = ingest([cut], tmp_path / "out")
    t = r.totals()
    assert t["files_cut_short"] == 1 and 0 < t["events"] < 399
    _accounted(t)


def test_segments_and_chunks_keep_every_line_once(tmp_path, make_corpus):
    shutil.copytree(make_corpus(users=60, seed=5, days=0.04), tmp_path / "raw")
    files = sorted((tmp_path / "raw" / "bluesky-2025-03").rglob("*.jsonl"))
    whole = read_events(_ingested(tmp_path / "raw", tmp_path / "whole"))
    cfg = dict(segment_bytes=4096, chunk_rows=50, workers=1)
    segs, _ = plan([tmp_path / "raw"], IngestConfig(**cfg))
    assert len(segs) > len(files)
    pieces = read_events(_ingested(tmp_path / "raw", tmp_path / "pieces", **cfg))
    assert pieces.equals(whole)
    # chunk_rows bounds each row group, hence what a part holds in memory before writing
    chunked = _ingested(tmp_path / "raw", tmp_path / "chunked", chunk_rows=50, workers=1)
    meta = pq.ParquetFile(sorted((chunked / "events").glob("*.parquet"))[0]).metadata
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    assert meta.num_row_groups > 1 and max(sizes) == 50
    assert read_events(chunked).equals(whole)


def test_worker_processes_give_the_same_parts(tmp_path, make_corpus):
    shutil.copytree(make_corpus(users=60, seed=6, days=0.04), tmp_path / "raw")
    one = _ingested(tmp_path / "raw", tmp_path / "one", segment_bytes=8192, workers=1)
    two = _ingested(tmp_path / "raw", tmp_path / "two", segment_bytes=8192, workers=2)
    a = sorted((one / "events").glob("*.parquet"))
    b = sorted((two / "events").glob("*.parquet"))
    assert [p.name for p in a] == [p.name for p in b]
    assert all(x.read_bytes() == y.read_bytes() for x, y in zip(a, b))


def test_unchanged_parts_are_kept_and_changed_inputs_redone(tmp_path):
    path = write_lines(tmp_path / "raw" / "a.jsonl", [post("did:plc:a", 1, "p1", "one")])
    write_lines(tmp_path / "raw" / "b.jsonl", [post("did:plc:b", 2, "p2", "two")])
    out = tmp_path / "out"
    ingest([tmp_path / "raw"], out)
    part_b = out / "events" / "part-00001-00000.parquet"
    stamp = part_b.stat().st_mtime_ns
    write_lines(path, [post("did:plc:a", 1, "p1", "one"), post("did:plc:a", 3, "p3", "three")])
    r = ingest([tmp_path / "raw"], out)
    assert part_b.stat().st_mtime_ns == stamp  # b.jsonl did not change: its part was kept
    assert r.totals()["events"] == 3


def test_missing_path_is_bad_input(tmp_path):
    with pytest.raises(BadInputError, match="no such file"):
        ingest([tmp_path / "nope"], tmp_path / "out")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(BadInputError, match="unknown input format"):
        ingest([tmp_path / "notes.txt"], tmp_path / "out")


def test_a_failed_write_stops_the_run_and_leaves_no_part(tmp_path, corpus):
    """A full disk, for real: the file-size limit of a child process makes every write past 64 KB fail."""
    import subprocess
    import sys

    big = tmp_path / "one.jsonl"  # one input whose events make a part far over the limit
    big.write_bytes(b"".join(f.read_bytes() for f in sorted(corpus.rglob("jetstream*.jsonl"))))
    code = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))\n"
        "from blueprint.cli import main\n"
        f"sys.exit(main(['-q', 'build', {str(big)!r}, '--out', {str(tmp_path / 'ds')!r}, '--workers', '1']))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr
    assert "blueprint: error: OSError" in proc.stderr and "File too large" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert "input ends early" not in proc.stderr  # a write error is not a cut-off input
    parts = tmp_path / "ds-work" / "ingest"
    assert not list(parts.rglob("*.parquet")) or all(
        pq.ParquetFile(p).metadata.num_rows >= 0 for p in parts.rglob("*.parquet"))  # only whole, readable parts
    assert not list(parts.rglob("*.tmp"))  # nothing half-written left behind
