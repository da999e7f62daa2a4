"""The end-to-end path at small size: synth -> build -> baseline -> score -> leaderboard."""

from __future__ import annotations

import datasets
import orjson
import pytest
from sklearn.metrics import accuracy_score, f1_score

from blueprint.actions import ACTIONS
from blueprint.cli import main
from blueprint.data import SPLITS

pytestmark = pytest.mark.full  # the demo itself: minutes


@pytest.fixture(scope="module")
def demo(demo_project):
    """The session's fresh output of the README's demo command (600 users, partitions 2 and 25)."""
    return demo_project / "demo-out"


def test_every_config_and_split_loads_with_manifest_counts(demo):
    manifest = orjson.loads((demo / "dataset" / "blueprint_manifest.json").read_bytes())
    names = datasets.get_dataset_config_names(str(demo / "dataset"))
    assert set(names) == set(manifest["configs"])
    assert {"2_clusters", "25_clusters", "25_clusters_c0", "25_clusters_c24", "2_clusters_c1"} <= set(names)
    for name in ("25_clusters", "2_clusters", "25_clusters_c3"):
        for split in SPLITS:
            ds = datasets.load_dataset(str(demo / "dataset"), name, split=split)
            assert ds.num_rows == manifest["configs"][name][split], (name, split)
    test = datasets.load_dataset(str(demo / "dataset"), "25_clusters", split="test")
    assert test.features["action"].names == list(ACTIONS)
    row = test[0]
    assert set(row) == {"id", "thread", "cluster_id", "action", "target_text"}
    assert row["thread"][-1]["actions"][ACTIONS[row["action"]]] is True
    assert all(m["actions"] is None for m in row["thread"][:-1])
    # per-cluster configs partition the full config
    for split in SPLITS:
        total = sum(manifest["configs"][f"25_clusters_c{c}"][split] for c in range(25))
        assert total == manifest["configs"]["25_clusters"][split]


def test_no_raw_identifiers_in_dataset(demo):
    users = [orjson.loads(r) for r in (demo / "raw/_meta/users.jsonl").read_bytes().splitlines()]
    blob = b"".join(p.read_bytes() for p in (demo / "dataset").rglob("*") if p.is_file())
    for u in users[:50]:
        assert u["did"].encode() not in blob
        assert u["handle"].encode() not in blob


def test_results_match_scikit_learn(demo):
    result = orjson.loads((demo / "results" / "majority.json").read_bytes())
    test = datasets.load_dataset(str(demo / "dataset"), "25_clusters", split="test")
    lines = (demo / "predictions/majority.jsonl").read_bytes().splitlines()
    preds = {r["id"]: r["action"] for r in map(orjson.loads, lines)}
    y_true = [ACTIONS[a] for a in test["action"]]
    y_pred = [preds[i] for i in test["id"]]
    assert result["results"]["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert result["results"]["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro", zero_division=0))
    # the majority baseline's macro-F1 is far below its accuracy: F1 is not accuracy here
    assert result["results"]["macro_f1"] < result["results"]["accuracy"]
    board = (demo / "leaderboard" / "leaderboard.md").read_text()
    assert "| majority | 25_clusters | test |" in board and "| cluster_majority | 25_clusters | test |" in board
    per = orjson.loads((demo / "results" / "cluster_majority.json").read_bytes())
    assert per["results"]["macro_f1"] >= result["results"]["macro_f1"]  # knowing the persona helps
    assert set(per["ci"]) >= {"accuracy", "macro_f1", "action_js", "cluster_macro_f1"}
    assert (demo / "leaderboard" / "index.html").is_file()


def test_demo_prints_where_things_are(tmp_path, capsys, demo):
    # a second run over the same folder reuses every finished stage
    before = {f.name: f.stat().st_mtime_ns for f in (demo / "results").glob("*.json")}
    rc = main(["-q", "demo", "--out", str(demo), "--resume"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "dataset" in out and "results" in out and "leaderboard" in out
    assert str(demo / "dataset") in out
    # the results of this very build are kept, not scored again
    assert {f.name: f.stat().st_mtime_ns for f in (demo / "results").glob("*.json")} == before


def test_cluster_reports_are_in_the_dataset_and_linked(demo):
    manifest = orjson.loads((demo / "dataset" / "blueprint_manifest.json").read_bytes())
    card = (demo / "dataset" / "README.md").read_text()
    for k in (2, 25):
        rep = orjson.loads((demo / "dataset" / "reports" / f"clusters_{k}.json").read_bytes())
        assert rep["k"] == k and len(rep["clusters"]) == k
        assert sum(c["threads"] for c in rep["clusters"]) == manifest["rows"]
        assert sum(c["users"] for c in rep["clusters"]) == rep["users"]
        assert min(c["users"] for c in rep["clusters"]) >= 10
        assert all(c["top_terms"] for c in rep["clusters"])
        assert all(sum(c["actions"].values()) == c["threads"] for c in rep["clusters"])
        png = (demo / "dataset" / "reports" / f"clusters_{k}.png").read_bytes()
        assert png.startswith(b"\x89PNG")
        assert f"reports/clusters_{k}.md" in card and f"reports/clusters_{k}.png" in card


def test_every_baseline_is_on_the_leaderboard_and_gbdt_beats_the_priors(demo):
    from blueprint.demo import BASELINES

    board = (demo / "leaderboard" / "leaderboard.md").read_text()
    f1 = {}
    for name in BASELINES:
        assert f"| {name} | 25_clusters | test |" in board
        f1[name] = orjson.loads((demo / "results" / f"{name}.json").read_bytes())["results"]["macro_f1"]
    assert set(BASELINES) == {"majority", "cluster_majority", "random", "persona_prior", "retrieval", "gbdt"}
    assert f1["gbdt"] > f1["persona_prior"] and f1["gbdt"] > f1["majority"]


def test_every_interval_of_the_demo_results_contains_its_estimate(demo):
    for f in sorted((demo / "results").glob("*.json")):
        res = orjson.loads(f.read_bytes())
        assert res["ci"], f.name
        for name, (lo, hi) in res["ci"].items():
            assert lo <= res["results"][name] <= hi, (f.name, name, res["results"][name], lo, hi)
        assert set(res["no_interval"]) >= {"max_cosine", "cluster_max_cosine"} or "max_cosine" not in res["results"]


def _table_cells(text: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in text.splitlines()
            if line.startswith("| ") and not line.startswith("| model")]


def test_the_readmes_baseline_table_is_what_the_demo_gives(demo):
    """The README's table of the demo's baselines is :func:`summary_table` of a demo run, to the rounding: the same
    rows in the same order, each number within 0.002 (another machine's floating point may move a third decimal).
    Regenerate it with ``python -c 'from blueprint.leaderboard.render import collect, summary_table;
    print(summary_table(collect("demo-out/results")))'``."""
    import re
    from pathlib import Path

    from blueprint.leaderboard.render import collect, summary_table

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = re.search(r"<!-- baseline-table -->\n(.*?)<!-- /baseline-table -->", readme, flags=re.S)
    assert block, "the README marks its baseline table with <!-- baseline-table --> ... <!-- /baseline-table -->"
    made = summary_table(collect(demo / "results"))
    assert block.group(1).splitlines()[0] == made.splitlines()[0]  # config, split, rows, text rows
    ours, theirs = _table_cells(block.group(1)), _table_cells(made)
    assert [r[0] for r in ours] == [r[0] for r in theirs]
    number = re.compile(r"-?\d+\.\d+")
    for a, b in zip(ours, theirs):
        for x, y in zip(a[1:], b[1:]):
            xs, ys = [float(v) for v in number.findall(x)], [float(v) for v in number.findall(y)]
            assert len(xs) == len(ys) and all(abs(u - v) <= 0.002 for u, v in zip(xs, ys)), (a[0], x, y)
