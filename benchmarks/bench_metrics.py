"""Metric speed: action metrics against scikit-learn, warm against cold scoring, parallel ROUGE.

    python benchmarks/bench_metrics.py [--rows 1000000] [--examples 10000] [--pairs 50000]

1. Action metrics (accuracy, macro-F1, per-action P/R/F1, confusion matrix) on 1M rows of
   action names, against scikit-learn computing the same four (target: at least 1.0).
2. Scoring 10,000 synthetic test examples with every metric (bootstrap included): the
   first, cold run embeds references and predictions; the second, with the reference
   embeddings cached on disk, embeds only the predictions (target: at least 1.8 times faster).
3. ROUGE-1/2/L on 50,000 pairs: blueprint's rouge (both cores) against single-process
   rouge-score, with identical values (target: at least 1.6 times faster).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Row, emit, interleaved, median, parse_args, versus  # noqa: E402

from blueprint.actions import ACTIONS, TEXT_ACTIONS  # noqa: E402


def actions_part(rows: int, repeats: int) -> Row:
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    from blueprint.metrics.suite import score_actions

    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(13) * 0.5)
    y_true = [ACTIONS[i] for i in rng.choice(13, rows, p=p)]
    y_pred = [ACTIONS[i] for i in rng.choice(13, rows, p=p)]
    labels = list(ACTIONS)

    def sk():
        accuracy_score(y_true, y_pred)
        f1_score(y_true, y_pred, average="macro", zero_division=0)
        precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
        confusion_matrix(y_true, y_pred, labels=labels)

    ours = score_actions(y_true, y_pred)
    assert abs(ours["macro_f1"] - f1_score(y_true, y_pred, average="macro", zero_division=0)) < 1e-12
    times = interleaved({"scikit-learn": sk, "blueprint": lambda: score_actions(y_true, y_pred)}, repeats)
    a, b = median(times["scikit-learn"]), median(times["blueprint"])
    print(f"1. action metrics on {rows:,} rows: scikit-learn {a:.2f} s, blueprint {b:.2f} s -> {a / b:.1f}x "
          "(target >= 1.0)")
    return versus(f"action metrics on {rows:,} rows vs scikit-learn", rows / b, rows / a, "rows/s", at_least=1.0)


def synthetic_examples(n: int, root: Path) -> tuple[list, list, list, list, list]:
    """Reference rows from a synthetic corpus's threads, and predictions that differ from them."""
    from blueprint.simpact.ingest import ingest
    from blueprint.simpact.threads import ThreadConfig, build_threads, read_threads
    from blueprint.synth import SynthConfig, synthesize

    synthesize(root / "raw", SynthConfig(users=max(100, n // 20), seed=4, days=2.0))
    ingest([root / "raw"], root / "ing")
    build_threads(root / "ing", root / "thr", ThreadConfig(min_user_posts=1))
    rows = read_threads(root / "thr").to_pylist()[:n]
    rng = np.random.default_rng(1)
    ref_actions = [r["action"] for r in rows]
    ref_texts = [r["messages"][-1]["text"] if r["action"] in TEXT_ACTIONS else None for r in rows]
    pool = [t for t in ref_texts if t]
    pred_actions = [ACTIONS[i] if rng.random() < 0.5 else a for i, a in zip(rng.integers(0, 13, n), ref_actions)]
    pred_texts = [pool[i] for i in rng.integers(0, len(pool), n)]  # real posts, of other rows
    clusters = list(rng.integers(0, 25, n))
    return ref_actions, pred_actions, ref_texts, pred_texts, clusters


def scoring_part(examples: int, root: Path, bootstrap: int = 200) -> Row:
    from blueprint.metrics.suite import ScoreConfig, score_all

    ra, pa, rt, pt, cl = synthetic_examples(examples, root)
    cache = root / "cache"
    cfg = ScoreConfig(cache_dir=str(cache), bootstrap=bootstrap)
    t = time.perf_counter()
    cold = score_all(ra, pa, rt, pt, cl, cfg)
    t_cold = time.perf_counter() - t
    t = time.perf_counter()
    warm = score_all(ra, pa, rt, pt, cl, cfg)
    t_warm = time.perf_counter() - t
    same = orjson.dumps(cold["results"], option=orjson.OPT_SORT_KEYS) == orjson.dumps(
        warm["results"], option=orjson.OPT_SORT_KEYS)
    print(f"2. scoring {examples:,} examples ({cold['n']['text_rows']:,} with text), bootstrap {cfg.bootstrap}: "
          f"cold {t_cold:.1f} s, warm {t_warm:.1f} s -> {t_cold / t_warm:.2f}x (target >= 1.8); "
          f"identical results: {same}")
    shutil.rmtree(cache, ignore_errors=True)
    assert same, "warm scoring changed the results"
    return versus(f"scoring {examples:,} examples: warm cache vs cold", examples / t_warm, examples / t_cold,
                  "examples/s", at_least=1.8)


def rouge_part(pairs: int, repeats: int, root: Path) -> Row:
    from rouge_score import rouge_scorer

    from blueprint.metrics.text import ROUGE_TYPES, rouge

    ra, pa, rt, pt, cl = synthetic_examples(min(pairs, 20000), root / "rouge")
    texts = [t for t in rt if t] or ["x"]
    rng = np.random.default_rng(2)
    refs = [texts[i] for i in rng.integers(0, len(texts), pairs)]
    preds = [texts[i] for i in rng.integers(0, len(texts), pairs)]
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES))

    def single():
        scores = (scorer.score(r, p) for p, r in zip(preds, refs))
        return np.array([[s[k].fmeasure for k in ROUGE_TYPES] for s in scores])

    assert (single() == rouge(preds, refs, workers=2)).all(), "values differ"
    times = interleaved({"rouge-score": single, "blueprint": lambda: rouge(preds, refs, workers=2)}, repeats)
    a, b = median(times["rouge-score"]), median(times["blueprint"])
    print(f"3. ROUGE on {pairs:,} pairs: rouge-score {a:.1f} s, blueprint (2 workers) {b:.1f} s -> {a / b:.2f}x "
          "(target >= 1.6), identical values")
    return versus(f"ROUGE on {pairs:,} pairs (2 workers) vs rouge-score", pairs / b, pairs / a, "pairs/s",
                  at_least=1.6)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--examples", type=int, default=10_000)
    ap.add_argument("--pairs", type=int, default=50_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--parts", default="1,2,3")
    ap.add_argument("--bootstrap", type=int, default=200, help="bootstrap resamples of the scoring part")
    args = parse_args(ap, quick=dict(rows=50_000, examples=150, pairs=2_000, repeats=1, bootstrap=20))
    parts = set(args.parts.split(","))
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as tmp:
        root = Path(tmp)
        if "1" in parts:
            rows.append(actions_part(args.rows, args.repeats))
        if "2" in parts:
            rows.append(scoring_part(args.examples, root / "scoring", args.bootstrap))
        if "3" in parts:
            rows.append(rouge_part(args.pairs, args.repeats, root))
    emit(rows, args)


if __name__ == "__main__":
    main()
