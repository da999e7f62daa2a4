from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import orjson
import phonenumbers
import pytest

from blueprint.actions import ACTIONS, action_of
from blueprint.errors import BadInputError
from blueprint.pii.checksums import b58check_decode, luhn_valid, segwit_valid
from blueprint.synth import SynthConfig, synthesize
from blueprint.synth.pii import PII_TYPES


def _tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def _corrupt_lines(root: Path) -> set[tuple[str, int]]:
    """(file, line) of every malformed line the corpus says it planted."""
    rows = map(orjson.loads, (root / "_meta/corrupt_lines.jsonl").read_bytes().splitlines())
    return {(r["file"], r["line"]) for r in rows}


def _lines(root: Path):
    for f in sorted(root.rglob("jetstream*")):
        for i, raw in enumerate(f.read_bytes().splitlines(), start=1):
            yield str(f.relative_to(root)), i, raw


def test_same_seed_same_bytes(tmp_path, corpus):
    """The session's corpus (conftest.CORPUS) made again, and with another seed."""
    from conftest import CORPUS

    again = tmp_path / "again"
    synthesize(again, SynthConfig(**CORPUS))
    assert _tree_digest(again) == _tree_digest(corpus)
    other = tmp_path / "other"
    synthesize(other, SynthConfig(**{**CORPUS, "seed": CORPUS["seed"] + 1}))
    assert _tree_digest(other) != _tree_digest(corpus)


@pytest.mark.parametrize("compress", ["gz", "zst"])
def test_compressed_output_is_deterministic(tmp_path, compress):
    a = synthesize(tmp_path / "a", SynthConfig(users=20, seed=1, days=0.2, compress=compress))
    synthesize(tmp_path / "b", SynthConfig(users=20, seed=1, days=0.2, compress=compress))
    assert all(f.endswith(f".jsonl.{compress}") for f in a.files)
    assert _tree_digest(tmp_path / "a") == _tree_digest(tmp_path / "b")


def test_lines_have_real_jetstream_shapes(corpus, real_data):
    real_keys = {}
    for raw in (real_data / "jetstream_corpus_expected_v1.jsonl").read_bytes().splitlines():
        e = orjson.loads(raw)
        if e["kind"] == "commit":
            c = e["commit"]
            real_keys.setdefault((c["collection"], c["operation"]), (set(e), set(c)))
    corrupt = _corrupt_lines(corpus)
    seen = Counter()
    for f, i, raw in _lines(corpus):
        if (f, i) in corrupt:
            continue
        e = orjson.loads(raw)
        assert isinstance(e["time_us"], int) and e["did"].startswith("did:plc:")
        if e["kind"] != "commit":
            continue
        c = e["commit"]
        key = (c["collection"], c["operation"])
        if key in real_keys:
            top, commit = real_keys[key]
            assert set(e) == top and set(c) == commit, key
        rec = c.get("record") or {}
        if rec.get("reply"):
            for ref in ("parent", "root"):
                assert set(rec["reply"][ref]) == {"uri", "cid"}
                assert rec["reply"][ref]["uri"].startswith("at://did:plc:")
        embed = rec.get("embed") or {}
        if "record" in embed:
            inner = embed["record"].get("record", embed["record"])
            assert set(inner) == {"uri", "cid"}
        seen[action_of(e)] += 1
    # every action occurs, rare ones included
    assert set(ACTIONS) <= set(seen), set(ACTIONS) - set(seen)


def test_personas_differ_in_action_mix(corpus):
    rows = map(orjson.loads, (corpus / "_meta/users.jsonl").read_bytes().splitlines())
    users = {r["did"]: r["persona"] for r in rows}
    assert len(set(users.values())) == 8
    by_persona = {}
    corrupt = _corrupt_lines(corpus)
    for f, i, raw in _lines(corpus):
        if (f, i) in corrupt:
            continue
        e = orjson.loads(raw)
        a = action_of(e)
        if a and e["did"] in users:
            by_persona.setdefault(users[e["did"]], Counter())[a] += 1
    share = {p: c["like"] / sum(c.values()) for p, c in by_persona.items()}
    assert share["meme_poster"] > share["poll_watcher"] + 0.1


def test_pii_sidecar_spans_are_exact(corpus):
    texts = {}
    for f, i, raw in _lines(corpus):
        try:
            texts[(f, i)] = orjson.loads(raw)["commit"]["record"]["text"]
        except Exception:
            continue
    rows = [orjson.loads(r) for r in (corpus / "_meta/planted_pii.jsonl").read_bytes().splitlines()]
    assert {r["type"] for r in rows} == set(PII_TYPES)
    for r in rows:
        text = texts[(r["file"], r["line"])]
        assert text[r["start"]:r["end"]] == r["value"], r
        v = r["value"]
        if r["type"] == "CREDIT_CARD":
            assert luhn_valid(v.replace(" ", "").replace("-", ""))
        elif r["type"] == "CRYPTO" and not v.startswith("0x"):
            assert segwit_valid(v) if v.lower().startswith("bc1") else b58check_decode(v) is not None
        elif r["type"] == "PHONE_NUMBER":
            assert any(True for _ in phonenumbers.PhoneNumberMatcher(v, "CA")), v
        elif r["type"] == "USERNAME":
            assert text[r["start"] - 1] == "@"


def test_corrupt_lines_are_listed_and_malformed(corpus):
    rows = [orjson.loads(r) for r in (corpus / "_meta/corrupt_lines.jsonl").read_bytes().splitlines()]
    assert rows, "corrupt_rate > 0 must produce malformed lines"
    lines = {(f, i): raw for f, i, raw in _lines(corpus)}
    for r in rows:
        raw = lines[(r["file"], r["line"])]
        if r["kind"] in ("truncated", "invalid_utf8"):
            with pytest.raises(orjson.JSONDecodeError):
                orjson.loads(raw)
        elif r["kind"] == "not_json":
            try:
                assert not isinstance(orjson.loads(raw), dict)
            except orjson.JSONDecodeError:
                pass
        elif r["kind"] in ("missing_field", "mistyped_field"):
            e = orjson.loads(raw)
            ok_did = isinstance(e.get("did"), str)
            ok_time = isinstance(e.get("time_us"), int)
            ok_commit = e.get("kind") != "commit" or (isinstance(e.get("commit"), dict)
                                                       and {"collection", "rkey", "operation"} <= set(e["commit"]))
            assert not (ok_did and ok_time and "kind" in e and ok_commit), raw
    manifest = orjson.loads((corpus / "_meta/synth.json").read_bytes())
    assert manifest["counts"]["lines"] == len(lines)
    assert sum(manifest["counts"]["corrupt"].values()) == len(rows)


def test_existing_folder_is_reused_or_refused(tmp_path):
    out = tmp_path / "raw"
    cfg = SynthConfig(users=10, seed=3, days=0.1)
    synthesize(out, cfg)
    before = _tree_digest(out)
    synthesize(out, cfg)  # same config: kept as is
    assert _tree_digest(out) == before
    with pytest.raises(BadInputError, match="--force"):
        synthesize(out, SynthConfig(users=11, seed=3, days=0.1))
    synthesize(out, SynthConfig(users=11, seed=3, days=0.1), force=True)
    assert _tree_digest(out) != before


@pytest.mark.parametrize("kwargs, field", [({"users": 1}, "users"), ({"pii_rate": 1.5}, "pii_rate"),
                                           ({"compress": "bz2"}, "compress"), ({"personas": 0}, "personas")])
def test_config_is_checked(kwargs, field):
    with pytest.raises(BadInputError) as err:
        SynthConfig(**kwargs)
    assert err.value.field == field
