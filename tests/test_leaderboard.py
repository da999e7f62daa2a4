"""Scoring and the leaderboard: optional metrics, the target of distinguishability, intervals, progress."""

from __future__ import annotations

import orjson
import pytest

from blueprint.cli import main
from blueprint.leaderboard.render import collect, markdown
from blueprint.leaderboard.score import LEADERBOARD
from blueprint.metrics.registry import get_metric, higher_is_better, targets

CONFIG = "5_clusters"


@pytest.fixture(scope="module")
def scored(small_dataset, tiny_model, tmp_path_factory):
    """Two baselines scored: one with BERTScore, one without (the leaderboard must take both)."""
    root = tmp_path_factory.mktemp("board")
    for name, extra in (("cluster_majority", []), ("random", ["--no-bertscore"])):
        preds = root / f"{name}.jsonl"
        assert main(["-q", "baseline", name, "--dataset", str(small_dataset), "--config", CONFIG,
                     "--out", str(preds)]) == 0
        assert main(["-q", "score", str(preds), "--dataset", str(small_dataset), "--config", CONFIG, "--out",
                     str(root / "results" / f"{name}.json"), "--model", str(tiny_model), "--bootstrap", "60",
                     *extra]) == 0
    return root


def test_results_carry_the_papers_diagonality_and_intervals_that_hold_their_estimate(scored):
    res = orjson.loads((scored / "results" / "cluster_majority.json").read_bytes())
    r = res["results"]
    for name in ("tfidf_jaccard", "avg_cosine", "max_cosine", "action_f1", "inverse_embedding_js"):
        assert f"diagonality_{name}" in r
        assert len(res["diagonality_matrices"][name]) == len(res["diagonality_matrices"][name][0])
    assert "action_js_diagonality" in r and res["diagonality_chance"] == pytest.approx(1 / 5)
    assert res["paper_numbers"]["avg_cosine"] == "cluster_avg_cosine"
    for name, (lo, hi) in res["ci"].items():
        assert lo <= r[name] <= hi, (name, r[name], lo, hi)
    assert "max_cosine" not in res["ci"] and "maximum" in res["no_interval"]["max_cosine"]
    assert res["targets"] == {"distinguishability": 0.5, "cluster_distinguishability": 0.5}
    assert res["higher_is_better"]["distinguishability"] is None


def test_distinguishability_is_ranked_by_its_distance_to_one_half():
    info = get_metric("distinguishability")
    assert info.target == 0.5 and info.higher_is_better is None
    assert info.distance(0.1) == pytest.approx(0.4) and info.distance(0.9) == pytest.approx(0.4)
    assert info.distance(0.55) < info.distance(0.3)
    assert higher_is_better(["macro_f1", "distinguishability"]) == {"macro_f1": True, "distinguishability": None}
    assert targets(["macro_f1", "cluster_distinguishability"]) == {"cluster_distinguishability": 0.5}


def test_a_result_without_optional_metrics_is_on_the_board_with_dashes(scored, tmp_path):
    no_bert = orjson.loads((scored / "results" / "random.json").read_bytes())
    assert "bertscore_f1" not in no_bert["results"]
    assert main(["-q", "leaderboard", str(scored / "results"), "--out", str(tmp_path / "site")]) == 0
    board = (tmp_path / "site" / "leaderboard.md").read_text()
    row = next(line for line in board.splitlines() if line.startswith("| ") and "| random |" in line)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[5 + LEADERBOARD.index("bertscore_f1")] == "–"
    assert "off by" in cells[5 + LEADERBOARD.index("distinguishability")]
    assert "cluster_avg_cosine" in board and "paper's number" in board


def test_a_wrong_schema_is_refused(scored, tmp_path, capsys):
    bad = tmp_path / "results"
    bad.mkdir()
    (bad / "x.json").write_bytes(orjson.dumps({"results": {"accuracy": 0.5}, "config": {}}))
    assert main(["leaderboard", str(bad), "--out", str(tmp_path / "site")]) == 2
    assert "x.json" in capsys.readouterr().err
    rows = collect(scored / "results")
    assert [r["model_name"] for r in rows] == sorted((r["model_name"] for r in rows),
                                                     key=lambda n: -next(x for x in rows if x["model_name"] == n)[
                                                         "results"]["macro_f1"])
    assert markdown(rows).count("\n| ") >= 3


def test_scoring_shows_a_progress_bar_for_each_phase(small_dataset, tiny_model, tmp_path, capsys):
    preds = tmp_path / "p.jsonl"
    main(["-q", "baseline", "random", "--dataset", str(small_dataset), "--config", CONFIG, "--out", str(preds)])
    assert main(["score", str(preds), "--dataset", str(small_dataset), "--config", CONFIG, "--out",
                 str(tmp_path / "r.json"), "--model", str(tiny_model), "--bootstrap", "5", "--no-bertscore"]) == 0
    err = capsys.readouterr().err
    for phase in ("embed", "text metrics", "bootstrap actions", "bootstrap texts", "bootstrap distributions",
                  "distinguishability"):
        assert phase in err, phase
