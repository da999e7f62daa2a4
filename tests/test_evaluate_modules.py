"""Every evaluate module: loads offline, explicit keywords only, a full metric card, doctests that run."""

from __future__ import annotations

import doctest
import importlib.util
import inspect
from pathlib import Path

import evaluate
import pytest

REPO = Path(__file__).resolve().parents[1]
MODULES = sorted(p.name for p in (REPO / "metrics").iterdir() if (p / f"{p.name}.py").is_file())
SECTIONS = ("## Metric Description", "## How to Use", "### Inputs", "### Output Values", "### Examples",
            "## Limitations and Bias", "## Citation")


def test_the_three_modules_exist():
    assert MODULES == ["distributional_fidelity", "next_action_accuracy", "stylistic_fidelity"]


@pytest.mark.parametrize("name", MODULES)
def test_loads_offline_and_takes_explicit_keywords(name):
    metric = evaluate.load(str(REPO / "metrics" / name))
    params = inspect.signature(metric._compute).parameters
    assert not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()), "no **kwargs in _compute"
    assert list(params)[:3] == ["predictions", "references", "clusters"]


@pytest.mark.parametrize("name", MODULES)
def test_metric_card(name):
    card = (REPO / "metrics" / name / "README.md").read_text()
    assert card.startswith("---\n")
    for section in SECTIONS:
        assert section in card, f"{name}/README.md lacks {section}"


@pytest.mark.parametrize("name", MODULES)
def test_doctests_run(name, monkeypatch):
    monkeypatch.chdir(REPO)  # the examples load "metrics/<name>", as a user in the repository would
    spec = importlib.util.spec_from_file_location(f"_doctest_{name}", REPO / "metrics" / name / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in doctest.DocTestFinder().find(module) if t.examples]
    for t in tests:
        runner.run(t)
    result = runner.summarize(verbose=False)
    assert result.attempted >= 1, f"{name} has no doctest example"
    assert result.failed == 0


def _floats(d: dict) -> dict:
    return {k: v for k, v in d.items() if isinstance(v, float)}


def test_contract_keys_and_values_equal_the_package(tiny_model):
    from blueprint.metrics.bertscore import BertScorer
    from blueprint.metrics.suite import TextEmbedder, score_actions, score_distribution, score_texts
    from blueprint.metrics.text import TermCounts

    root = REPO / "metrics"
    preds, refs, cl = ["like", "post", "block"], ["like", "reply", "block"], [0, 1, 1]
    a = evaluate.load(str(root / "next_action_accuracy")).compute(predictions=preds, references=refs, clusters=cl)
    assert {"accuracy", "macro_f1", "rare_macro_f1", "per_action", "cluster_accuracy", "per_cluster"} <= set(a)
    want = score_actions(refs, preds, cl)
    assert _floats(a) == _floats(want) and a["per_action"] == want["per_action"]
    texts = ["carbon tax vote", "housing election", "the debate poll", "rent and workers"]
    s = evaluate.load(str(root / "stylistic_fidelity")).compute(
        predictions=texts[::-1], references=texts, clusters=[0, 0, 1, 1], model=str(tiny_model))
    assert {"avg_cosine", "max_cosine", "embedding_js", "tfidf_jaccard", "rouge1", "rouge2", "rougeL",
            "bertscore_f1", "cluster_avg_cosine", "per_cluster"} <= set(s)
    want = score_texts(texts, texts[::-1], [0, 0, 1, 1], embedder=TextEmbedder(str(tiny_model), cache_dir=None),
                       bert_scorer=BertScorer(str(tiny_model), cache_dir=None))
    assert _floats(s).keys() == _floats(want).keys()
    for k, v in _floats(want).items():
        assert s[k] == pytest.approx(v, abs=1e-6, nan_ok=True), k
    dp, dr, dc = ["like", "post", "like", "reply"] * 5, ["like", "post", "post", "reply"] * 5, [0, 1] * 10
    gen_t, ref_t = texts * 5, texts[::-1] * 5
    d = evaluate.load(str(root / "distributional_fidelity")).compute(
        predictions=dp, references=dr, clusters=dc, prediction_texts=gen_t, reference_texts=ref_t,
        model=str(tiny_model))
    assert {"action_js", "distinguishability", "cluster_action_js", "per_cluster", "diagonality",
            "diagonality_tfidf_jaccard", "action_js_diagonality", "diagonality_matrices"} <= set(d)
    emb = TextEmbedder(str(tiny_model), cache_dir=None)
    want = score_distribution(dr, dp, dc, reference_embeddings=emb(ref_t), prediction_embeddings=emb(gen_t),
                              embedding_rows=list(range(20)), text_counts=TermCounts(ref_t + gen_t))
    for k, v in _floats(want).items():
        assert d[k] == pytest.approx(v, abs=1e-9, nan_ok=True), k
    with pytest.raises(ValueError, match="prediction_texts"):
        evaluate.load(str(root / "distributional_fidelity")).compute(
            predictions=["like"], references=["like"], prediction_texts=["x"])
