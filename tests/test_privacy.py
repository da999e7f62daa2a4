from __future__ import annotations

import logging
import os
import re
import stat
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from blueprint.cli import main
from blueprint.data import SPLITS, read_split
from blueprint.errors import BadInputError
from blueprint.simpact.audit import audit
from blueprint.simpact.cluster import ClusterConfig
from blueprint.simpact.export import ExportConfig
from blueprint.simpact.ingest import IngestConfig
from blueprint.simpact.pipeline import BuildConfig, EmbedConfig, build
from blueprint.simpact.privacy import create_secret, load_secret, pseudonym, read_removal_list


@dataclass
class Built:
    ds: Path  # the corpus built with the tests' base settings (partitions 2 and 5)
    removed: Path  # the same, with three users' removal requests
    by_cluster: Path  # the same, with time ranked per cluster
    raw: Path
    removed_dids: list[str]


@pytest.fixture(scope="module")
def built(small_dataset, small_build, corpus) -> Built:
    users = [orjson.loads(x) for x in (corpus / "_meta/users.jsonl").read_bytes().splitlines()]
    removed = [u["did"] for u in users[:3]]
    return Built(small_dataset, small_build(remove_dids=tuple(removed)),
                 small_build(export=ExportConfig(time_mode="cluster")), corpus, removed)


def rows(ds, config="5_clusters"):
    out = []
    for split in ("train", "validation", "test"):
        out += read_split(ds, config, split).to_pylist()
    return out


def test_secret_rules(tmp_path, caplog):
    short = tmp_path / "short.key"
    short.write_text("x" * 31)
    with pytest.raises(BadInputError, match="at least 32") as err:
        load_secret(short)
    assert err.value.field == "secret_file"
    made = create_secret(tmp_path / "new" / "secret.key")
    assert stat.S_IMODE(os.stat(tmp_path / "new" / "secret.key").st_mode) == 0o600
    assert load_secret(tmp_path / "new" / "secret.key") == made and len(made) == 64
    with pytest.raises(FileExistsError):
        create_secret(tmp_path / "new" / "secret.key")  # never overwritten


def test_generated_secret_is_kept_outside_the_dataset_and_announced(tmp_path, tiny_model, caplog, make_corpus):
    raw = make_corpus(users=30, seed=1, days=0.3)
    cfg = BuildConfig(ingest=IngestConfig(workers=1), embed=EmbedConfig(model=str(tiny_model)),
                      cluster=ClusterConfig(partitions=(2,), size_min=3))
    with caplog.at_level(logging.WARNING, logger="blueprint"):
        r = build([raw], tmp_path / "ds", cfg)
    assert r.secret_file == tmp_path / "ds-work" / "secret.key"
    assert str(r.secret_file) in caplog.text
    assert stat.S_IMODE(os.stat(r.secret_file).st_mode) == 0o600
    secret = r.secret_file.read_bytes().strip()
    assert all(secret not in p.read_bytes() for p in (tmp_path / "ds").rglob("*") if p.is_file())
    # loudly: the log and the card say the ids will not match a rebuild unless the secret is kept
    assert "will not match any later rebuild" in caplog.text
    assert "will not match any later rebuild" in (tmp_path / "ds" / "README.md").read_text()
    # a --secret-file path that does not exist yet is created there, mode 0600, and used
    caplog.clear()
    named = tmp_path / "keys" / "team.secret"
    with caplog.at_level(logging.WARNING, logger="blueprint"):
        r2 = build([raw], tmp_path / "ds2", cfg, secret_file=named)
    assert r2.secret_file == named and stat.S_IMODE(os.stat(named).st_mode) == 0o600
    assert "NEW pseudonym secret" in caplog.text and str(named) in caplog.text
    assert "will not match" not in (tmp_path / "ds2" / "README.md").read_text()  # the user named it: kept
    again = build([raw], tmp_path / "ds3", cfg, secret_file=named)
    ids = lambda d: sorted(read_split(d, "2_clusters", "train")["id"].to_pylist())  # noqa: E731
    assert again.secret_file == named and ids(tmp_path / "ds3") == ids(tmp_path / "ds2")


def test_pseudonyms_are_per_thread(built):
    data = rows(built.ds)
    threads_of = defaultdict(set)
    for r in data:
        ids = [m["user_id"] for m in r["thread"]]
        assert all(re.fullmatch(r"[0-9a-f]{64}", u) for u in ids)
        for u in set(ids):
            threads_of[u].add(r["id"])
    assert all(len(t) == 1 for t in threads_of.values())  # never the same id in two threads
    # inside one thread the same author keeps one id: a reply chain by two users alternating
    multi = [r for r in data if len(r["thread"]) >= 3 and len({m["user_id"] for m in r["thread"]}) < len(r["thread"])]
    assert multi, "some thread has one author twice"


def test_hmac_construction():
    a = pseudonym(b"s" * 32, "did:plc:x", b"thread-1")
    assert a == pseudonym(b"s" * 32, "did:plc:x", b"thread-1")
    assert a != pseudonym(b"s" * 32, "did:plc:x", b"thread-2")
    assert a != pseudonym(b"t" * 32, "did:plc:x", b"thread-1")
    import hashlib
    import hmac

    assert a == hmac.new(b"s" * 32, b"did:plc:x\x00thread-1", hashlib.sha256).hexdigest()


def test_relative_time_is_a_global_rank(built):
    data = rows(built.ds)
    ranks = [m["relative_integer_time"] for r in data for m in r["thread"]]
    assert min(ranks) >= 0 and max(ranks) < len(ranks)
    for r in data:  # threads are oldest first
        t = [m["relative_integer_time"] for m in r["thread"]]
        assert t == sorted(t)
    # the same content in every partition: ids and times agree between 2 and 4 clusters
    two = {r["id"]: r["thread"] for r in rows(built.ds, "2_clusters")}
    assert {r["id"]: r["thread"] for r in data} == two


def test_relative_time_per_cluster(built):
    glob = {r["id"]: r for r in rows(built.ds)}
    local = rows(built.by_cluster)
    assert {r["id"] for r in local} == set(glob)  # ids do not depend on the time mode
    by_cluster = defaultdict(set)
    for r in local:
        for m in r["thread"]:
            by_cluster[r["cluster_id"]].add(m["relative_integer_time"])
    for values in by_cluster.values():
        assert min(values) == 0  # each cluster starts its own count
    manifest = orjson.loads((built.by_cluster / "blueprint_manifest.json").read_bytes())
    assert manifest["time_mode"] == "cluster"


def _raw_texts_by(raw, dids) -> set[str]:
    """Every post text the given users wrote, from the raw Jetstream files."""
    out = set()
    for f in sorted(raw.rglob("*.jsonl")):
        if "_meta" in f.parts:
            continue
        for line in f.read_bytes().splitlines():
            try:
                e = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(e, dict) or not isinstance(e.get("commit"), dict):
                continue  # a planted malformed line
            text = (e["commit"].get("record") or {}).get("text")
            if e.get("did") in dids and isinstance(text, str) and text:
                out.add(text)
    return out


def _all_rows(ds):
    configs = orjson.loads((ds / "blueprint_manifest.json").read_bytes())["configs"]
    return {(name, split): read_split(ds, name, split).to_pylist() for name in configs for split in SPLITS}


def test_removal_requests(built):
    removed = built.removed_dids
    theirs = _raw_texts_by(built.raw, set(removed))
    full, after = _all_rows(built.ds), _all_rows(built.removed)
    assert set(full) == set(after)  # every config and split is still there
    # their texts were in the dataset before the request, and are nowhere after it, in any config or split
    texts_before = {m["text"] for rows_ in full.values() for r in rows_ for m in r["thread"]}
    assert len(theirs & texts_before) > 5
    for key, rows_ in after.items():
        for r in rows_:
            assert not any(m["text"] in theirs for m in r["thread"]), key
    # the threads they acted in (their text is the answer) are gone from every config and split
    acted = {r["id"] for rows_ in full.values() for r in rows_ if r["target_text"] in theirs}
    assert acted and not acted & {r["id"] for rows_ in after.values() for r in rows_}
    # their words inside other threads read <REMOVED>
    assert any(m["text"] == "<REMOVED>" for rows_ in after.values() for r in rows_ for m in r["thread"])
    # their DIDs are nowhere in the released files
    blob = b"".join(p.read_bytes() for p in (built.removed).rglob("*") if p.is_file())
    assert not any(d.encode() in blob for d in removed)
    # every thread still present keeps its id and its split (its persona may move: the clustering runs
    # without the removed users)
    before = {r["id"]: split for (name, split), rows_ in full.items() for r in rows_}
    for (name, split), rows_ in after.items():
        for r in rows_:
            assert before.get(r["id"]) == split, (name, r["id"])
    card = (built.removed / "README.md").read_text()
    assert "3 users asked to be removed" in card


def test_removal_list_file(tmp_path):
    f = tmp_path / "remove.txt"
    f.write_text("# requests\ndid:plc:ewvi7nxzyoun6zhxrhs64oiz\n\ndid:web:example.com  # by email\n")
    assert read_removal_list(f) == ("did:plc:ewvi7nxzyoun6zhxrhs64oiz", "did:web:example.com")
    f.write_text("did:plc:ewvi7nxzyoun6zhxrhs64oiz\nalice.bsky.social\n")
    with pytest.raises(BadInputError) as err:
        read_removal_list(f)
    assert err.value.line == 2


def test_audit_passes_on_a_clean_build(built):
    report = audit(built.ds, raw=[built.raw], min_cluster=5)
    status = {c["name"]: c["status"] for c in report["checks"]}
    assert report["ok"], report
    assert status == {"residual_pii": "pass", "raw_identifiers": "pass", "pseudonym_reuse": "pass",
                      "absolute_time": "pass", "k_anonymity": "pass", "verbatim_share": "info",
                      "suspicious_text": "info"}
    share = next(c for c in report["checks"] if c["name"] == "verbatim_share")["value"]
    assert 0 < share < 1


def test_audit_catches_leaks(built, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(built.ds, bad)
    users = [orjson.loads(x) for x in (built.raw / "_meta/users.jsonl").read_bytes().splitlines()]
    f = sorted((bad / "data" / "5_clusters").glob("train-*.parquet"))[0]
    t = pq.read_table(f)
    thread = t["thread"].to_pylist()
    thread[0][0]["text"] = f"contact {users[0]['did']} or jane@example.com"
    thread[1][0]["user_id"] = thread[2][0]["user_id"]  # one pseudonym in two threads
    t = t.set_column(t.schema.get_field_index("thread"), "thread", pa.array(thread, t.schema.field("thread").type))
    meta = dict(t.schema.metadata or {})
    meta[b"built"] = b"1742688000123456"
    pq.write_table(t.replace_schema_metadata(meta), f)
    report = audit(bad, raw=[built.raw], min_cluster=1000)
    status = {c["name"]: c["status"] for c in report["checks"]}
    assert not report["ok"]
    assert status["residual_pii"] == status["raw_identifiers"] == status["pseudonym_reuse"] == "fail"
    assert status["absolute_time"] == status["k_anonymity"] == "fail"


def test_audit_cli_exit_codes(built, tmp_path, capsys):
    assert main(["audit", str(built.ds), "--min-cluster", "5", "--out", str(tmp_path / "a")]) == 0
    assert (tmp_path / "a" / "audit.json").is_file() and (tmp_path / "a" / "audit.md").is_file()
    assert main(["audit", str(built.ds), "--min-cluster", "999", "--out", str(tmp_path / "b")]) == 3
    assert main(["audit", str(tmp_path / "nope")]) == 2


def test_no_absolute_time_in_any_output_file(built):
    for p in (built.ds).rglob("*"):
        if p.is_file() and p.suffix in (".md", ".json"):
            text = p.read_text()
            assert not re.search(r"\b20\d\d-[01]\d-[0-3]\d", text), p
            assert not re.search(r"(?<![\d.])1[67]\d{8,14}\b", text), p  # not the digits of a share (0.17...)


@pytest.mark.parametrize("evasion", ["write jane [at] example [dot] com", "mail alex dot morgan at gmail dot com",
                                     "card 4111\u00a01111\u00a01111\u00a01111", "see hxxps://bad.example.net/x",
                                     "jane.doe\u200b@example.com"])
def test_audit_reports_an_evasion_an_older_scrubber_let_through(built, tmp_path, evasion):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(built.ds, bad)
    f = sorted((bad / "data" / "5_clusters").glob("train-*.parquet"))[0]
    t = pq.read_table(f)
    thread = t["thread"].to_pylist()
    thread[0][0]["text"] = f"an old build left this: {evasion}"
    t = t.set_column(t.schema.get_field_index("thread"), "thread", pa.array(thread, t.schema.field("thread").type))
    pq.write_table(t.replace_schema_metadata(t.schema.metadata), f)
    report = audit(bad, raw=[built.raw], min_cluster=5)
    status = {c["name"]: c["status"] for c in report["checks"]}
    assert status["residual_pii"] == "fail" and not report["ok"]


def test_export_in_worker_processes_is_the_same_bytes(built, tmp_path, monkeypatch):
    """The export's batches transformed in two processes, results taken in order: the same dataset as one process."""
    import filecmp

    from blueprint.pii import Scrubber
    from blueprint.simpact import privacy
    from blueprint.simpact.export import export
    from blueprint.simpact.personas import read_partitions

    removed = built.removed_dids
    work = built.removed.parent / "ds-work"
    monkeypatch.setattr(privacy, "_BATCH", 97)  # many batches, several in flight
    kw = dict(partitions=read_partitions(work / "cluster"), secret=b"k" * 40, scrubber=Scrubber(region="CA"),
              remove_dids=removed)
    one = export(work / "threads" / "threads.parquet", out_dir=tmp_path / "one", **kw)
    two = export(work / "threads" / "threads.parquet", out_dir=tmp_path / "two",
                 batch_mapper=privacy.process_batches(2), **kw)
    assert one.to_dict() == two.to_dict() and one.rows > 5 * 97 and one.dropped["removal_request"] > 0
    files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*") if p.is_file())
    assert files and files == sorted(p.relative_to(tmp_path / "two") for p in (tmp_path / "two").rglob("*")
                                     if p.is_file())
    assert all(filecmp.cmp(tmp_path / "one" / f, tmp_path / "two" / f, shallow=False) for f in files)


def test_private_files_inside_a_git_work_tree_that_does_not_ignore_them_are_warned_of(
        tmp_path: Path, real_data: Path, tiny_model: Path, caplog) -> None:
    """A secret or a raw work folder written inside a git checkout that does not ignore them is one ``git add .``
    from public: the build says so and how to ignore them; once ignored, it is silent. The advice is run as given."""
    import subprocess

    repo = tmp_path / "project"
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    args = ["build", str(real_data), "--out", str(repo / "ds"), "--partitions", "2", "--size-min", "1",
            "--topics", "none", "--langs", "any", "--min-user-posts", "1", "--model", str(tiny_model),
            "--workers", "1", "--secret-file", str(repo / "keys" / "my.secret"), "--hold-out-labels",
            str(repo / "labels.jsonl")]
    caplog.set_level(logging.WARNING, logger="blueprint")
    main(args)
    err = caplog.text
    advice = re.findall(r"Ignore it with: (echo '.*' >> \S+)", err)
    assert len(advice) == 3, err  # the work folder, the secret, the labels
    assert any("ds-work" in a for a in advice) and any("keys/my.secret" in a for a in advice)
    assert all(str(repo) in a for a in advice)
    for command in advice:
        subprocess.run(["bash", "-c", command], check=True)
    untracked = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=repo,
                               capture_output=True, text=True, check=True).stdout.splitlines()
    assert not [u for u in untracked if "secret" in u or "-work/" in u or "labels" in u], untracked
    caplog.clear()
    main([*args, "--resume"])
    assert "Ignore it with" not in caplog.text

    # outside any work tree, nothing to say
    outside = tmp_path / "plain"
    caplog.clear()
    main([*args[:3], str(outside / "ds"), *args[4:-4], "--secret-file", str(outside / "s.key"), "--resume"])
    assert "Ignore it with" not in caplog.text


def test_a_removal_rebuild_with_personas_from_keeps_every_staying_users_persona(built, small_build, capsys):
    """After 3 of 120 users asked to be removed, a fresh clustering renumbers the personas; carried over from the
    first build (``--personas-from``), every thread that stays keeps its cluster id in every partition."""
    work = built.ds.parent / "ds-work"
    carried = small_build(remove_dids=tuple(built.removed_dids),
                          cluster=ClusterConfig(partitions=(2, 5), size_min=5, personas_from=str(work)))
    full, fresh, kept = _all_rows(built.ds), _all_rows(built.removed), _all_rows(carried)
    for partition in ("2_clusters", "5_clusters"):
        before = {r["id"]: r["cluster_id"] for s in SPLITS for r in full[partition, s]}
        for name, rows in (("fresh", fresh), ("carried", kept)):
            after = {r["id"]: r["cluster_id"] for s in SPLITS for r in rows[partition, s]}
            common = before.keys() & after.keys()
            share = sum(before[i] == after[i] for i in common) / len(common)
            print(f"{partition} {name}: {share:.1%} of {len(common)} common threads keep their cluster id")
            if name == "carried":
                assert share == 1.0, share
            elif partition == "5_clusters":
                assert share < 1.0  # why the option exists: a fresh clustering moves threads between personas
    out = capsys.readouterr().out
    assert "5_clusters carried: 100.0%" in out
    card = (carried / "README.md").read_text()
    assert "carried over from a previous build" in card and "k = 5:" in card
    # another previous build is another build: the cluster stage's fingerprint names the previous partitions
    from blueprint.simpact.carry import personas_hash

    manifest = orjson.loads((carried.parent / "ds-work" / "cluster" / "manifest.json").read_bytes())
    report = manifest["report"]["partitions"]["5"]["carried_over"]
    assert report["users_gone"] == 3 and report["kept_share"] == 1.0
    assert len(personas_hash(work)) == 64
