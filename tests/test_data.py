"""The exported dataset: configs, splits, schema, loading (script-free, builder, release layout), labels."""

from __future__ import annotations

import shutil
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import datasets
import orjson
import pytest

import blueprint
from blueprint.actions import ACTIONS
from blueprint.cli import main
from blueprint.data import SPLITS, BluePrint, content_id, read_split, split_of
from blueprint.errors import BadInputError
from blueprint.leaderboard.score import score
from blueprint.simpact.cluster import ClusterConfig
from blueprint.simpact.ingest import IngestConfig
from blueprint.simpact.pipeline import BuildConfig, EmbedConfig, build


@dataclass
class Built:
    ds: Path  # the corpus built with the tests' base settings (partitions 2 and 5)
    hidden: Path  # the same, with the test labels held out
    labels: Path
    raw: Path


@pytest.fixture(scope="module")
def built(small_dataset, small_build, corpus) -> Built:
    hidden = small_build(hold_out_labels=True)
    return Built(small_dataset, hidden, hidden.parent / "labels.jsonl", corpus)


def test_every_config_and_split_loads(built):
    ds = built.ds
    manifest = orjson.loads((ds / "blueprint_manifest.json").read_bytes())
    names = datasets.get_dataset_config_names(str(ds))
    assert names == list(manifest["configs"]) and len(names) == 2 + 5 + 2
    for name in names:
        for split in SPLITS:
            d = blueprint.load_dataset(name, split, data_dir=ds)
            assert d.num_rows == manifest["configs"][name][split], (name, split)
    assert datasets.load_dataset(str(ds), split="test").num_rows == manifest["configs"]["5_clusters"]["test"]


def test_schema_matches_the_public_release(built):
    d = datasets.load_dataset(str(built.ds), "2_clusters", split="train")
    f = d.features
    assert list(f) == ["id", "thread", "cluster_id", "action", "target_text"]
    msg = f["thread"].feature if hasattr(f["thread"], "feature") else f["thread"][0]
    assert {k: str(v.dtype) for k, v in msg.items() if k != "actions"} == {
        "user_id": "string", "text": "string", "relative_integer_time": "int64"}
    assert list(msg["actions"]) == list(ACTIONS) and all(v.dtype == "bool" for v in msg["actions"].values())
    assert f["cluster_id"].dtype == "int64" and f["action"].names == list(ACTIONS)


def test_same_id_same_split_in_every_partition(built):
    where = defaultdict(set)
    for name in ("2_clusters", "5_clusters", "5_clusters_c1"):
        for split in SPLITS:
            for i in blueprint.load_dataset(name, split, data_dir=built.ds)["id"]:
                where[i].add(split)
    assert all(len(s) == 1 for s in where.values())


def test_split_of_on_hand_checked_keys():
    # u = int(sha256(key)[:15], 16) / 2**60, worked out by hand from the digests:
    # alpha 8ed3f6ad685b959 -> 0.558, charlie b9dd960c1753459 -> 0.726, uniform ef379363dd0cb7b -> 0.934,
    # bravo f144a6907dc4284 -> 0.942, oscar f5a1971c2ef02a5 -> 0.959, india fb54e9062429a93 -> 0.982
    assert [split_of(k) for k in ("alpha", "charlie", "uniform", "bravo", "oscar", "india")] == [
        "train", "train", "validation", "validation", "test", "test"]
    assert [split_of(k, (0.5, 0.25, 0.25)) for k in ("alpha", "charlie", "oscar")] == [
        "validation", "validation", "test"]


def _signatures(ds, config="5_clusters"):
    """Each split as a set of secret-free thread signatures: the action, and every message's rank and text."""
    out = {}
    for split in SPLITS:
        t = read_split(ds, config, split).to_pylist()
        out[split] = {(r["action"], tuple((m["relative_integer_time"], m["text"]) for m in r["thread"])) for r in t}
    return out


def test_two_secrets_give_the_same_splits_and_different_ids(built, small_build):
    other = small_build(secret="z" * 48)
    a, b = _signatures(built.ds), _signatures(other)
    assert all(a[s] == b[s] for s in SPLITS) and len(a["test"]) > 10
    ids_a = set(read_split(built.ds, "5_clusters", "test")["id"].to_pylist())
    ids_b = set(read_split(other, "5_clusters", "test")["id"].to_pylist())
    assert not ids_a & ids_b  # ids stay keyed: another secret, other ids


def test_example_ids_are_keyed_hashes_of_the_raw_identity():
    import hashlib
    import hmac

    from blueprint.data import example_id, split_key

    ident = b'[["at://did:plc:x/app.bsky.feed.post/1"],"post",17]'
    assert example_id(ident, b"s" * 32) == hmac.new(b"s" * 32, b"blueprint-id-v2\x00" + ident,
                                                     hashlib.sha256).hexdigest()[:32]
    assert split_key(ident) == hashlib.sha256(b"blueprint-split-v1\x00" + ident).hexdigest()


def test_streaming(built):
    it = datasets.load_dataset(str(built.ds), "5_clusters_c0", split="train", streaming=True)
    first = next(iter(it))
    assert first["cluster_id"] == 0 and first["thread"][-1]["actions"] is not None


def test_builder_on_an_exported_dataset(built, tmp_path):
    b = BluePrint(config_name="2_clusters", data_dir=str(built.ds), cache_dir=str(tmp_path),
                  dataset_name="blueprint")
    b.download_and_prepare()
    got = b.as_dataset(split="validation")
    want = blueprint.load_dataset("2_clusters", "validation", data_dir=built.ds)
    assert got["id"] == want["id"] and got.features == want.features
    assert next(iter(b.as_streaming_dataset(split="test")))["id"] in set(
        blueprint.load_dataset("2_clusters", "test", data_dir=built.ds)["id"])


def _release_fixture(root, n_per_cluster=(300, 200)):
    """A copy of the public release layout: processed_2_clusters/cluster_{i}.jsonl."""
    d = root / "processed_2_clusters"
    d.mkdir(parents=True)
    t = 0
    for c, n in enumerate(n_per_cluster):
        with open(d / f"cluster_{c}.jsonl", "wb") as fh:
            for i in range(n):
                action = ACTIONS[(i + c) % len(ACTIONS)]
                flags = {a: a == action for a in ACTIONS}
                thread = [{"user_id": f"u{i}a", "text": f"carbon tax post {i}", "relative_integer_time": t,
                           "actions": None},
                          {"user_id": f"u{i}b",
                           "text": f"reply {i}" if action in ("post", "reply", "quote", "post_update") else None,
                           "relative_integer_time": t + 1, "actions": flags}]
                t += 2
                fh.write(orjson.dumps({"thread": thread, "cluster_id": c}) + b"\n")
    return root


def test_builder_on_the_public_release_layout(tmp_path):
    data = _release_fixture(tmp_path / "release")
    total = {}
    for name in ("2_clusters", "2_clusters_c1"):
        b = BluePrint(config_name=name, data_dir=str(data), cache_dir=str(tmp_path / "cache"), dataset_name="blueprint")
        b.download_and_prepare()
        total[name] = {s: b.as_dataset(split=s) for s in SPLITS}
    assert sum(d.num_rows for d in total["2_clusters"].values()) == 500
    assert sum(d.num_rows for d in total["2_clusters_c1"].values()) == 200
    row = total["2_clusters"]["train"][0]
    assert row["thread"][-1]["actions"][ACTIONS[row["action"]]]
    assert all(split_of(i) == "train" for i in total["2_clusters"]["train"]["id"])
    assert row["id"] == content_id(ACTIONS[row["action"]],
                                   [(m["relative_integer_time"], m["text"]) for m in row["thread"]])


def test_builder_needs_a_known_layout(tmp_path):
    b = BluePrint(config_name="2_clusters", data_dir=str(tmp_path), cache_dir=str(tmp_path / "c"),
                  dataset_name="blueprint")
    with pytest.raises(FileNotFoundError, match="neither data/2_clusters/"):
        b.download_and_prepare()


def test_corrupt_parquet_and_broken_card_give_clear_errors(built, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(built.ds, bad)
    shard = sorted((bad / "data" / "2_clusters").glob("test-*.parquet"))[0]
    shard.write_bytes(shard.read_bytes()[:100])
    with pytest.raises(BadInputError, match="unreadable Parquet") as err:
        blueprint.load_dataset("2_clusters", "test", data_dir=bad)
    assert err.value.path == str(shard)
    assert main(["stats", str(bad)]) == 2
    card = bad / "README.md"
    card.write_text(card.read_text().replace("configs:", "configs: [unclosed", 1))
    with pytest.raises(BadInputError, match="cannot read the configs") as err:
        blueprint.load_dataset("2_clusters", "train", data_dir=bad)
    assert err.value.path == str(card)
    with pytest.raises(BadInputError, match="unknown config"):
        blueprint.load_dataset("7_clusters", "train", data_dir=built.ds)


def test_hidden_test_labels(built, tmp_path):
    hidden, labels = built.hidden, built.labels
    test = blueprint.load_dataset("5_clusters", "test", data_dir=hidden)
    assert set(test["action"]) == {-1} and all(t is None for t in test["target_text"])
    assert all(r["thread"][-1]["text"] is None and r["thread"][-1]["actions"] is None for r in test)
    train = blueprint.load_dataset("5_clusters", "train", data_dir=hidden)
    assert -1 not in set(train["action"])  # only the test split is hidden
    rows = [orjson.loads(x) for x in labels.read_bytes().splitlines()]
    assert sorted(r["id"] for r in rows) == sorted(test["id"])
    assert not any(labels.name in str(p) for p in hidden.rglob("*"))
    # a leaderboard scores against the labels file; the result equals scoring the labelled build
    preds = tmp_path / "p.jsonl"
    preds.write_bytes(b"".join(orjson.dumps({"id": r["id"], "action": "like", "text": None}) + b"\n" for r in rows))
    with pytest.raises(BadInputError, match="labels are hidden"):
        score(preds, hidden, "5_clusters")
    a = score(preds, hidden, "5_clusters", labels=labels)["results"]
    b = score(preds, built.ds, "5_clusters")["results"]
    assert a == pytest.approx(b, nan_ok=True, rel=0, abs=0)
    assert main(["validate", str(preds), "--dataset", str(hidden), "--config", "5_clusters"]) == 0


def test_labels_file_must_be_outside(built, tiny_model, tmp_path):
    cfg = BuildConfig(ingest=IngestConfig(workers=1), embed=EmbedConfig(model=str(tiny_model)),
                      cluster=ClusterConfig(partitions=(2,), size_min=5),
                      hold_out_labels=str(tmp_path / "ds" / "labels.jsonl"))
    with pytest.raises(BadInputError, match="outside the dataset"):
        build([built.raw], tmp_path / "ds", cfg)


def test_stats_count_what_the_data_holds(built, capsys):
    """The statistics against the rows themselves, read by datasets, and the users against the cluster stage's own
    assignment of every user (the build's work directory): sources that blueprint.stats does not read."""
    import pyarrow.parquet as pq

    assert main(["stats", str(built.ds), "--json"]) == 0
    s = orjson.loads(capsys.readouterr().out)
    p = s["partitions"]["5_clusters"]
    rows = [r for split in SPLITS for r in datasets.load_dataset(str(built.ds), "5_clusters", split=split)]
    assert p["threads"] == len(rows) and p["messages"] == sum(len(r["thread"]) for r in rows)
    assert p["mean_thread_length"] == pytest.approx(p["messages"] / len(rows))
    assert p["actions"] == {a: sum(ACTIONS[r["action"]] == a for r in rows) for a in ACTIONS}
    assert p["splits"] == {split: datasets.load_dataset(str(built.ds), "5_clusters", split=split).num_rows
                           for split in SPLITS}
    by_cluster = {c["cluster"]: c for c in p["clusters"]}
    for k, c in by_cluster.items():
        mine = [r for r in rows if r["cluster_id"] == k]
        assert c["threads"] == len(mine) and c["messages"] == sum(len(r["thread"]) for r in mine)
    assigned = pq.read_table(built.ds.parent / "ds-work" / "cluster" / "partitions.parquet")["k5"].to_pylist()
    assert {k: c["users"] for k, c in by_cluster.items()} == {k: assigned.count(k) for k in range(5)}
    assert p["users"] == len(assigned)
    assert main(["stats", str(built.ds)]) == 0
    table = capsys.readouterr().out
    assert f"5_clusters: {len(rows):,} threads, {len(assigned):,} users" in table


@pytest.mark.slow
def test_loading_script_on_datasets_3_6(built, tmp_path):
    """blueprint.py through load_dataset(..., trust_remote_code=True) in a virtual environment with datasets 3.6."""
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    venv = tmp_path / "venv36"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run(pip + ["datasets==3.6.0", "orjson", "pyyaml"], check=True)
    subprocess.run(pip + ["--no-deps", "-e", str(repo)], check=True)
    code = (
        "import datasets, json, sys\n"
        "assert datasets.__version__ == '3.6.0'\n"
        f"d = datasets.load_dataset({str(repo / 'blueprint.py')!r}, '2_clusters', data_dir={str(built / 'ds')!r}, "
        "trust_remote_code=True)\n"
        "print(json.dumps({s: d[s].num_rows for s in d}))\n"
    )
    out = subprocess.run([str(venv / "bin" / "python"), "-c", code], check=True, capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"})
    counts = orjson.loads(out.stdout.strip().splitlines()[-1])
    manifest = orjson.loads((built.ds / "blueprint_manifest.json").read_bytes())
    assert counts == manifest["configs"]["2_clusters"]


def test_two_builds_in_folders_of_the_same_name_load_their_own_rows(tmp_path, tiny_model, make_corpus):
    # datasets keys its cache of a local folder in a way that two folders of the same name can share; the
    # build fingerprint in every shard name keeps each build's rows its own, in either order, in one cache
    cache = tmp_path / "hf-cache"
    base = dict(ingest=IngestConfig(workers=1), embed=EmbedConfig(model=str(tiny_model)),
                cluster=ClusterConfig(partitions=(2,), size_min=5))
    folders = []
    for seed in (1, 2):
        root = tmp_path / f"team{seed}"
        (root / "s.key").parent.mkdir()
        (root / "s.key").write_text("w" * 40)
        build([make_corpus(users=40, seed=seed)], root / "dataset", BuildConfig(**base), secret_file=root / "s.key",
              progress=False)
        folders.append(root / "dataset")
    own = [set(read_split(f, "2_clusters", "train")["id"].to_pylist()) for f in folders]
    assert own[0] != own[1]
    for order in (folders, folders[::-1], folders):
        for f in order:
            got = datasets.load_dataset(str(f), "2_clusters", split="train", cache_dir=str(cache))
            assert set(got["id"]) == own[folders.index(f)], f
