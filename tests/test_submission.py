"""Submissions from strangers: every problem reported at once, with its line and field; warnings; meta."""

from __future__ import annotations

import orjson
import pytest

from blueprint.cli import main
from blueprint.data import read_split
from blueprint.errors import BadInputError
from blueprint.leaderboard.submission import read_meta, read_predictions, validate

CONFIG = "5_clusters"


@pytest.fixture(scope="module")
def ids(small_dataset):
    return read_split(small_dataset, CONFIG, "test", columns=["id"])["id"].to_pylist()


def _write(path, lines):
    path.write_bytes(b"".join((x if isinstance(x, bytes) else orjson.dumps(x)) + b"\n" for x in lines))
    return path


def test_every_problem_at_once_with_line_and_field(tmp_path, ids):
    good = [{"id": i, "action": "like", "text": None} for i in ids]
    bad = [
        b'{"id": "x", "action": "like"',                                   # 1 invalid JSON
        b'{"id": "\xff\xfe", "action": "like"}',                           # 2 invalid UTF-8
        b'["id", "like"]',                                                 # 3 not an object
        {"action": "like"},                                                # 4 missing id
        {"id": ids[0], "action": "like", "score": 0.9},                    # 5 unknown key
        {"id": 7, "action": "like"},                                       # 6 wrong type
        {"id": ids[1], "action": "repots"},                                # 7 unknown action
        {"id": ids[2], "action": "reply", "text": "   "},                  # 8 blank text for a text action
        {"id": ids[3], "action": "post"},                                  # 9 no text for a text action
        {"id": ids[4], "action": "quote", "text": "x" * 3001},             # 10 text too long
        {"id": "not-a-row", "action": "like"},                             # 11 id not in the split
        good[5], good[5],                                                  # 12, 13: a repeated id
        {"id": ids[6], "action": "like", "text": "nice"},                  # 14 text for a non-text action: warning
    ]
    path = _write(tmp_path / "p.jsonl", bad)
    preds = read_predictions(path)
    problems = validate(preds, ids)
    where = {(p.line, p.field) for p in problems}
    assert {(1, None), (2, None), (3, None), (4, "id"), (5, "score"), (6, "id"), (7, "action"), (8, "text"),
            (9, "text"), (10, "text"), (11, "id"), (13, "id")} <= where
    msgs = {p.line: p.message for p in problems if p.line}
    assert "invalid UTF-8" in msgs[2] and "did you mean 'repost'?" in msgs[7]
    assert "repeats the id of line 12" in msgs[13]
    assert any(p.line is None and "coverage" in p.message for p in problems)  # missing ids, with the coverage
    assert [(w.line, w.field) for w in preds.warnings] == [(14, "text")]


def test_exit_codes_warnings_and_nothing_written(tmp_path, ids, small_dataset, capsys):
    base = ["validate", "--dataset", str(small_dataset), "--config", CONFIG]
    ok = _write(tmp_path / "ok.jsonl", [{"id": i, "action": "like", "text": "x" if n == 0 else None}
                                        for n, i in enumerate(ids)])
    before = set(tmp_path.iterdir())
    assert main(base + [str(ok)]) == 0
    captured = capsys.readouterr()
    assert "1 warnings" in captured.out and "warning: line 1: field 'text'" in captured.err
    broken = _write(tmp_path / "bad.jsonl", [{"id": i, "action": "dance"} for i in ids])
    assert main(base + [str(broken)]) == 2
    err = capsys.readouterr().err
    # one problem per line, and no row counted again as missing: each line names its id; capped at 50
    assert f"{len(ids)} problem(s)" in err and f"... and {len(ids) - 50} more" in err
    assert "have no prediction" not in err
    assert set(tmp_path.iterdir()) == before | {broken}
    assert main(base + [str(ok), "--max-bytes", "10"]) == 2
    assert "over the 10-byte cap" in capsys.readouterr().err


def test_meta_file(tmp_path, ids, small_dataset, capsys):
    good = tmp_path / "meta.json"
    good.write_bytes(orjson.dumps({"model_name": "qwen-ft", "revision": "abc123", "parameters": 7_000_000_000,
                                   "trained_on": "25_clusters train", "saw_train_split": True,
                                   "contact": "team@example.org", "link": "https://example.org/model"}))
    assert read_meta(good)["parameters"] == 7_000_000_000
    bad = tmp_path / "bad.json"
    bad.write_bytes(orjson.dumps({"model_name": "x", "license": "mit"}))
    with pytest.raises(BadInputError, match=r"unknown meta keys \['license'\]; known keys: \['model_name'"):
        read_meta(bad)
    wrong = tmp_path / "wrong.json"
    wrong.write_bytes(orjson.dumps({"parameters": True}))
    with pytest.raises(BadInputError, match="must be int"):
        read_meta(wrong)
    preds = _write(tmp_path / "p.jsonl", [{"id": i, "action": "like"} for i in ids])
    base = ["validate", str(preds), "--dataset", str(small_dataset), "--config", CONFIG]
    assert main(base + ["--meta", str(good)]) == 0
    assert main(base + ["--meta", str(bad)]) == 2


def test_validate_help_documents_the_format(capsys):
    with pytest.raises(SystemExit):
        main(["validate", "--help"])
    out = capsys.readouterr().out
    assert '{"id": "<row id>", "action": "<one of the 13 actions>", "text": "<text>" or null}' in out
    assert "saw_train_split" in out and "--max-bytes" in out


def test_the_fast_and_the_careful_path_read_the_same_rows(tmp_path, ids):
    rows = [{"id": i, "action": "reply" if n % 3 else "like", "text": f"text {n}" if n % 3 else None}
            for n, i in enumerate(ids)]
    fast = read_predictions(_write(tmp_path / "a.jsonl", rows))
    careful = read_predictions(_write(tmp_path / "b.jsonl", rows + [b""]))  # a blank line: the careful path
    assert fast.fast and not careful.fast
    strip = lambda p: [{k: v for k, v in r.items() if k != "_line"} for r in p.rows]  # noqa: E731
    assert strip(fast) == strip(careful) == rows
    assert not validate(fast, ids) and not validate(careful, set(ids))


def test_problems_in_line_order_under_a_header_at_the_first(tmp_path, ids, small_dataset, capsys):
    rows = [{"id": i, "action": "like"} for i in ids]
    rows[2] = {"id": ids[1], "action": "like"}  # line 3 repeats line 2's id: found after the per-line pass
    rows[5] = {"id": ids[5], "action": "lik"}  # line 6: an invalid line, whose id is not missing for it
    del rows[9]  # a row with no line at all
    path = _write(tmp_path / "p.jsonl", rows)
    problems = validate(read_predictions(path), ids)
    assert [(p.line, p.field) for p in problems] == [(3, "id"), (6, "action"), (None, "id")]
    # ids[2] (replaced by the repeat) and ids[9] (no line); not ids[5], whose line is invalid
    assert "2 rows of the evaluated split have no prediction" in problems[-1].message
    assert ids[2] in problems[-1].message and ids[9] in problems[-1].message and ids[5] not in problems[-1].message
    assert main(["validate", str(path), "--dataset", str(small_dataset), "--config", CONFIG]) == 2
    err = capsys.readouterr().err
    assert f"{path}:3: 3 problem(s)" in err  # the header cites the first problem's line


def test_a_submission_for_another_config_is_named_as_such(tmp_path, small_dataset, capsys, caplog):
    persona = read_split(small_dataset, "5_clusters_c1", "test", columns=["id"])["id"].to_pylist()
    path = _write(tmp_path / "c1.jsonl", [{"id": i, "action": "like"} for i in persona])
    assert main(["validate", str(path), "--dataset", str(small_dataset), "--config", CONFIG]) == 2
    err = capsys.readouterr().err
    assert f"cover 5_clusters_c1/test ({len(persona)} rows), not 5_clusters/test" in err
    assert "--config 5_clusters_c1" in err and "1 problem(s)" in err
    valid = read_split(small_dataset, "5_clusters", "validation", columns=["id"])["id"].to_pylist()
    path = _write(tmp_path / "val.jsonl", [{"id": i, "action": "like"} for i in valid])
    assert main(["score", str(path), "--dataset", str(small_dataset), "--config", "5_clusters_c1", "--out",
                 str(tmp_path / "r.json")]) == 2
    out = capsys.readouterr()
    # the config that covers the most of the file: the partition (the same ids in 2_clusters, the first by name)
    assert "cover 2_clusters/validation" in out.err or "cover 5_clusters/validation" in out.err
    assert out.out == "" and "no --name" not in caplog.text  # score says nothing before validation passes
