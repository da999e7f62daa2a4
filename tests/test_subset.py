"""Subset runs (predict --limit, score --subset) and a leaderboard that ranks only like with like."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import orjson
import pytest

from blueprint.cli import main
from blueprint.data import read_split
from blueprint.subset import stratified_sample

CONFIG = "5_clusters"


def test_a_stratified_sample_by_hand():
    ids = [f"r{i}" for i in range(10)]
    clusters = [0] * 6 + [1] * 3 + [2]
    # quotas 5*6/10 = 3, 5*3/10 = 1.5, 5*1/10 = 0.5: 3, 1, 0 and one left over; the remainders of clusters 1 and 2
    # tie (0.5 each), and the larger cluster takes it: 3, 2, 0
    got = stratified_sample(ids, clusters, 5, seed=0)
    assert Counter(clusters[ids.index(i)] for i in got) == {0: 3, 1: 2}
    assert got == sorted(got, key=ids.index)  # in the split's order
    # the same rows whatever the rows' order, other rows for another seed, all rows when n covers them
    order = list(range(10))
    random.Random(1).shuffle(order)
    assert set(stratified_sample([ids[j] for j in order], [clusters[j] for j in order], 5, seed=0)) == set(got)
    assert {tuple(stratified_sample(ids, clusters, 5, seed=s)) for s in range(8)} != {tuple(got)}
    assert stratified_sample(ids, clusters, 50) == ids
    with pytest.raises(ValueError, match="must be at least 1"):
        stratified_sample(ids, clusters, 0)


@pytest.fixture(scope="module")
def tiny_lm(small_dataset, tmp_path_factory):
    from blueprint.models.tiny import make_tiny_causal_lm
    from blueprint.task import SYSTEM_PROMPT

    rows = read_split(small_dataset, CONFIG, "train").to_pylist()
    texts = [SYSTEM_PROMPT] + [m["text"] or "" for r in rows for m in r["thread"]]
    return make_tiny_causal_lm(tmp_path_factory.mktemp("tiny-llama"), texts)


def test_predict_limit_then_score_subset_end_to_end(small_dataset, tiny_lm, tiny_model, tmp_path, capsys, caplog):
    test = read_split(small_dataset, CONFIG, "test", columns=["id", "cluster_id"]).to_pylist()
    preds = tmp_path / "p.jsonl"
    predict = ["-q", "predict", "--model", str(tiny_lm), "--dataset", str(small_dataset), "--config", CONFIG,
               "--out", str(preds), "--max-new-tokens", "8", "--batch-size", "8", "--limit", "12", "--seed", "3"]
    assert main(predict) == 0
    ids_file = tmp_path / "p.subset.txt"
    ids = ids_file.read_text().split()
    assert len(ids) == 12 and len(set(ids)) == 12
    assert [orjson.loads(x)["id"] for x in preds.read_bytes().splitlines()] == ids
    # stratified: each cluster within one row of its share
    size = Counter(r["cluster_id"] for r in test)
    got = Counter(r["cluster_id"] for r in test if r["id"] in set(ids))
    assert all(abs(got[c] - 12 * size[c] / len(test)) < 1 for c in size), (got, size)
    # deterministic: the same rows again
    assert main([*predict[:-1], "3", "--out", str(tmp_path / "again.jsonl")]) == 0
    assert (tmp_path / "again.subset.txt").read_text().split() == ids
    # the subset file is what validate and score need; without it the file is refused for the rows it lacks
    capsys.readouterr()
    assert main(["validate", str(preds), "--dataset", str(small_dataset), "--config", CONFIG]) == 2
    assert "have no prediction" in capsys.readouterr().err
    assert main(["validate", str(preds), "--dataset", str(small_dataset), "--config", CONFIG, "--subset",
                 str(ids_file)]) == 0
    out = tmp_path / "results" / "sub.json"
    assert main(["score", str(preds), "--dataset", str(small_dataset), "--config", CONFIG, "--out", str(out),
                 "--model", str(tiny_model), "--bootstrap", "10", "--no-bertscore", "--subset", str(ids_file)]) == 0
    printed = capsys.readouterr()
    assert f"12 of {len(test)} rows, partial" in printed.out
    assert "nan" not in printed.out and "under the 30" in caplog.text  # a 12-row score is flagged, never "nan"
    res = orjson.loads(out.read_bytes())
    assert res["n-samples"] == {**res["n-samples"], "original": len(test), "effective": 12, "evaluated": 12}
    assert res["config"]["partial"] is True and res["config"]["subset"]["file"] == "p.subset.txt"
    samples = [orjson.loads(x)["id"] for x in (tmp_path / "results" / "sub.samples.jsonl").read_bytes().splitlines()]
    assert samples == ids
    # an id that is not in the split names its line
    bad = tmp_path / "bad.txt"
    bad.write_text(f"{ids[0]}\nnot-a-row\n")
    assert main(["score", str(preds), "--dataset", str(small_dataset), "--config", CONFIG, "--out",
                 str(tmp_path / "x.json"), "--subset", str(bad)]) == 2
    assert f"{bad}:2" in capsys.readouterr().err and not (tmp_path / "x.json").exists()


def _results(small_dataset, tiny_model, root: Path, name: str, config: str = CONFIG) -> Path:
    preds = root / f"{name}-{config}.jsonl"
    assert main(["-q", "baseline", name, "--dataset", str(small_dataset), "--config", config, "--out",
                 str(preds)]) == 0
    out = root / "results" / f"{name}-{config}.json"
    assert main(["-q", "score", str(preds), "--dataset", str(small_dataset), "--config", config, "--out", str(out),
                 "--model", str(tiny_model), "--bootstrap", "10", "--no-bertscore", "--name", name]) == 0
    return out


def test_the_leaderboard_ranks_only_like_with_like(small_dataset, tiny_model, tmp_path, capsys):
    majority = _results(small_dataset, tiny_model, tmp_path, "majority")
    _results(small_dataset, tiny_model, tmp_path, "random")
    _results(small_dataset, tiny_model, tmp_path, "random", config="5_clusters_c1")
    # the same model scored on another build of the dataset: its fingerprint differs
    other = orjson.loads(majority.read_bytes())
    other["config"]["dataset_fingerprint"] = "f" * 64
    other["model_name"] = "majority-other-build"
    (tmp_path / "results" / "other-build.json").write_bytes(orjson.dumps(other))
    # a subset run of the first build
    sub = orjson.loads(majority.read_bytes())
    sub["config"].update(partial=True, split_ids_sha256="0" * 16)
    sub["n-samples"].update(evaluated=5, effective=5)
    sub["model_name"] = "majority-subset"
    (tmp_path / "results" / "subset.json").write_bytes(orjson.dumps(sub))

    site = tmp_path / "site"
    assert main(["leaderboard", str(tmp_path / "results"), "--out", str(site)]) == 0
    assert "4 groups ranked apart" in capsys.readouterr().out
    board = orjson.loads((site / "leaderboard.json").read_bytes())
    groups = {}
    for row in board:
        groups.setdefault(row["group"]["index"], []).append(row)
    first = groups[1]
    assert sorted(r["model_name"] for r in first) == ["majority", "random"]  # the full runs on the first build
    assert [r["rank"] for r in first] == [1, 2] and first[0]["group"]["why_apart"] is None
    fp = orjson.loads(majority.read_bytes())["config"]["dataset_fingerprint"]
    assert first[0]["group"]["dataset_fingerprint"] == fp
    why = {rows[0]["model_name"]: rows[0]["group"]["why_apart"] for g, rows in groups.items() if g > 1}
    assert "another build of the dataset (fingerprint ffffffffffff, not " + fp[:12] in why["majority-other-build"]
    assert "another config (5_clusters_c1, not 5_clusters)" in why["random"]
    assert "a subset run (5 of" in why["majority-subset"]
    assert all(r["rank"] == 1 for g, rows in groups.items() if g > 1 for r in rows)  # alone in its group
    pages = [r["page"] for r in board]
    assert len(set(pages)) == len(pages) and all((site / p).is_file() for p in pages)  # two "random" pages
    md = (site / "leaderboard.md").read_text()
    assert md.count("\n## ") == 4 and md.count("Ranked apart") == 3 and f"dataset {fp[:12]}" in md
    html = (site / "index.html").read_text()
    assert html.count("<section class=group") == 4 and "Ranked apart: scored on another build" in html

    # --strict refuses the mixed folder, names the groups, and writes nothing
    assert main(["leaderboard", str(tmp_path / "results"), "--out", str(tmp_path / "strict"), "--strict"]) == 2
    err = capsys.readouterr().err
    assert "4 different things" in err and "subset.json" in err and not (tmp_path / "strict").exists()
    for f in ("other-build.json", "subset.json", "random-5_clusters_c1.json", "random-5_clusters_c1.samples.jsonl"):
        (tmp_path / "results" / f).unlink()
    assert main(["leaderboard", str(tmp_path / "results"), "--out", str(tmp_path / "strict"), "--strict"]) == 0
