"""Scoring and the leaderboard: optional metrics, the target of distinguishability, intervals, progress."""

from __future__ import annotations

import orjson
import pytest

from blueprint.cli import main
from blueprint.data import read_split
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
    f1 = [r["results"]["macro_f1"] for r in rows]
    assert f1 == sorted(f1, reverse=True)  # ranked by macro-F1
    assert markdown(rows).count("\n| ") == 1 + len(rows)  # the header and one line per results file


def test_scoring_shows_a_progress_bar_for_each_phase(small_dataset, tiny_model, tmp_path, capsys):
    preds = tmp_path / "p.jsonl"
    main(["-q", "baseline", "random", "--dataset", str(small_dataset), "--config", CONFIG, "--out", str(preds)])
    assert main(["score", str(preds), "--dataset", str(small_dataset), "--config", CONFIG, "--out",
                 str(tmp_path / "r.json"), "--model", str(tiny_model), "--bootstrap", "5", "--no-bertscore"]) == 0
    err = capsys.readouterr().err
    for phase in ("embed", "text metrics", "bootstrap actions", "bootstrap texts", "bootstrap distributions",
                  "distinguishability"):
        assert phase in err, phase


def test_results_schema_versions_fingerprints_samples_and_determinism(scored, small_dataset, tiny_model, tmp_path,
                                                                      capsys):
    import hashlib

    import jsonschema

    from blueprint.leaderboard.score import results_schema, samples_path_for

    assert main(["score", "--schema"]) == 0
    schema = orjson.loads(capsys.readouterr().out)
    assert schema == orjson.loads(orjson.dumps(results_schema()))
    out = scored / "results" / "cluster_majority.json"
    res = orjson.loads(out.read_bytes())
    jsonschema.validate(res, schema)
    assert {"datasets", "transformers", "scikit-learn", "rouge-score", "bert-score"} <= set(res["versions"])
    assert res["versions"]["embedding_model"]["fingerprint"]
    manifest = orjson.loads((small_dataset / "blueprint_manifest.json").read_bytes())
    assert res["config"]["dataset_fingerprint"] == manifest["build_fingerprint"]
    preds = scored / "cluster_majority.jsonl"
    assert res["submission"]["sha256"] == hashlib.sha256(preds.read_bytes()).hexdigest()
    samples = [orjson.loads(x) for x in samples_path_for(out).read_bytes().splitlines()]
    assert len(samples) == res["n-samples"]["evaluated"] and res["samples_file"] == samples_path_for(out).name
    gold = dict(zip(*[read_split(small_dataset, CONFIG, "test", columns=[c])[c].to_pylist() for c in ("id", "action")]))
    from blueprint.actions import ACTIONS

    assert all(s["gold"] == ACTIONS[gold[s["id"]]] for s in samples)
    assert sum("rougeL" in s for s in samples) == res["n-samples"]["text_rows"]
    # the same input scored again: identical apart from the date
    again = tmp_path / "again.json"
    assert main(["-q", "score", str(preds), "--dataset", str(small_dataset), "--config", CONFIG, "--out", str(again),
                 "--model", str(tiny_model), "--bootstrap", "60"]) == 0
    a, b = orjson.loads(out.read_bytes()), orjson.loads(again.read_bytes())
    for r in (a, b):
        r.pop("date")
        r.pop("samples_file")
    assert a == b
    assert samples_path_for(again).read_bytes() == samples_path_for(out).read_bytes()


def test_meta_goes_into_the_results(scored, small_dataset, tiny_model, tmp_path):
    meta = tmp_path / "meta.json"
    meta.write_bytes(orjson.dumps({"model_name": "my-model", "parameters": 1000, "saw_train_split": True}))
    out = tmp_path / "r.json"
    assert main(["-q", "score", str(scored / "random.jsonl"), "--dataset", str(small_dataset), "--config", CONFIG,
                 "--out", str(out), "--model", str(tiny_model), "--bootstrap", "0", "--no-bertscore",
                 "--meta", str(meta)]) == 0
    res = orjson.loads(out.read_bytes())
    assert res["model_name"] == "my-model" and res["submission"]["meta"]["parameters"] == 1000


@pytest.mark.full  # eight scoring processes: a minute
def test_eight_scores_at_once_into_one_folder(scored, small_dataset, tiny_model, tmp_path):
    """Eight score processes write into one results folder while a reader keeps reading it: every file the
    reader sees is whole, and the leaderboard lists all eight."""
    import subprocess
    import sys
    import threading

    results = tmp_path / "results"
    results.mkdir()
    procs = [subprocess.Popen([sys.executable, "-m", "blueprint.cli", "-q", "score", str(scored / "random.jsonl"),
                               "--dataset", str(small_dataset), "--config", CONFIG, "--out",
                               str(results / f"run{i}.json"), "--name", f"run{i}", "--model", str(tiny_model),
                               "--bootstrap", "5", "--no-bertscore"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE) for i in range(8)]
    seen, broken = set(), []
    done = threading.Event()

    def read_loop():
        while not done.is_set():
            for f in results.iterdir():
                if f.name.startswith("."):
                    continue  # a temporary file, invisible to the leaderboard's *.json and *.jsonl globs
                try:
                    data = f.read_bytes()
                    if f.suffix == ".json":
                        orjson.loads(data)
                    else:
                        [orjson.loads(x) for x in data.splitlines()]
                    seen.add(f.name)
                except FileNotFoundError:
                    pass
                except orjson.JSONDecodeError:
                    broken.append(f.name)

    reader = threading.Thread(target=read_loop)
    reader.start()
    codes = [p.wait(timeout=600) for p in procs]
    done.set()
    reader.join()
    assert codes == [0] * 8, [p.stderr.read() for p in procs]
    assert not broken
    assert {f"run{i}.json" for i in range(8)} <= {f.name for f in results.iterdir()}
    assert main(["-q", "leaderboard", str(results), "--out", str(tmp_path / "site")]) == 0
    board = orjson.loads((tmp_path / "site" / "leaderboard.json").read_bytes())
    assert sorted(r["model_name"] for r in board) == [f"run{i}" for i in range(8)]


def test_a_one_row_persona_is_flagged_never_printed_as_nan(small_dataset, tiny_model, tmp_path, capsys, caplog):
    """A persona scored on one row (``25_clusters_c17`` of the demo has one test row): score warns that it cannot
    be read and prints "n/a (why)" where a metric is undefined; the leaderboard greys the row and says so."""
    one = read_split(small_dataset, "5_clusters_c1", "test", columns=["id"])["id"].to_pylist()[:1]
    ids = tmp_path / "one.txt"
    ids.write_text(one[0] + "\n")
    preds = tmp_path / "p.jsonl"
    preds.write_bytes(orjson.dumps({"id": one[0], "action": "like", "text": None}) + b"\n")
    out = tmp_path / "results" / "one.json"
    assert main(["score", str(preds), "--dataset", str(small_dataset), "--config", "5_clusters_c1", "--subset",
                 str(ids), "--out", str(out), "--model", str(tiny_model), "--bootstrap", "5", "--no-bertscore"]) == 0
    printed = capsys.readouterr().out
    assert "nan" not in printed.lower() and "n/a (" in printed, printed
    assert "only 1 rows are evaluated, under the 30" in caplog.text
    assert main(["-q", "leaderboard", str(tmp_path / "results"), "--out", str(tmp_path / "site")]) == 0
    md = (tmp_path / "site" / "leaderboard.md").read_text()
    assert "Only 1 rows: too few to read" in md and "nan" not in md.replace("n/a", "")
    page = next((tmp_path / "site" / "models").glob("*.html")).read_text()
    assert "<tr class=small>" in page and "too small (n &lt; 30)" in page
