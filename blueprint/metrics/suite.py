"""Scoring predictions against references: every metric, per cluster and pooled, with bootstrap intervals.

Each family has one function that validates its inputs once and returns a flat dict:
a bare name is the population level (the pooled data), ``cluster_<name>`` the mean over
clusters, and ``per_cluster`` the table of per-cluster values. :func:`score_all` runs the
three families and adds a confidence interval to every headline number.

Intervals come from a stratified bootstrap over rows (each cluster keeps its size),
with ``bootstrap`` resamples and a ``seed``: percentile intervals centred on the
estimate (:func:`interval`), none for a maximum (:data:`NO_INTERVAL`). Two shortcuts
keep it affordable, and both are stated in the results: resamples of the text-set metrics draw at most
``bootstrap_max_rows`` rows (pairwise distances cost n squared), and the interval of
distinguishability resamples the out-of-fold correctness of one cross-validation rather
than refitting the classifier.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any, cast

import numpy as np

from blueprint.actions import ACTION_INDEX, ACTIONS, TEXT_ACTIONS
from blueprint.embedding import TextEmbedder, default_cache_dir
from blueprint.errors import BadInputError
from blueprint.metrics import distribution as dist
from blueprint.metrics import text as tm
from blueprint.metrics.action import N_ACTIONS, _confusion, _macro, _prf, to_indices
from blueprint.metrics.bootstrap import (
    NO_INTERVAL,
    bootstrap_ci,
    interval,
    resample,
    split_ci,
)
from blueprint.metrics.config import DEFAULT_RARE, ScoreConfig
from blueprint.metrics.divergence import action_js
from blueprint.metrics.registry import higher_is_better, targets

__all__ = ["DEFAULT_RARE", "HEADLINE", "NO_INTERVAL", "ScoreConfig", "TextEmbedder", "interval", "rare_actions_from",
           "resample", "score_actions", "score_all", "score_distribution", "score_texts"]

def rare_actions_from(train_actions: Sequence[str | int], max_share: float = 0.05) -> tuple[str, ...]:
    """The actions that make up less than ``max_share`` of a training split."""
    idx = to_indices(train_actions, "train_actions")
    share = np.bincount(idx, minlength=N_ACTIONS) / len(idx)
    return tuple(a for a, s in zip(ACTIONS, share) if s < max_share)


# --- helpers -----------------------------------------------------------------------------------------------


def _clusters(clusters: Sequence[int] | np.ndarray | None, n: int) -> np.ndarray:
    if clusters is None:
        return np.zeros(n, dtype=np.int64)
    c = np.asarray(clusters)
    if c.ndim != 1 or len(c) != n:
        raise BadInputError(f"clusters has {len(c)} items but references has {n}", field="clusters")
    if c.dtype.kind not in "iu":
        raise BadInputError(f"must be integers, got {c.dtype}", field="clusters")
    return c.astype(np.int64)


def _mean(values) -> float:
    vals = [v for v in values if v is not None and not np.isnan(v)]
    return float(np.mean(vals)) if vals else float("nan")


def _levels(per_cluster: dict[int, dict[str, float]], population: dict[str, float]) -> dict[str, Any]:
    out: dict[str, Any] = dict(population)
    names = [k for k in population if isinstance(population[k], float)]
    for name in names:
        out[f"cluster_{name}"] = _mean(pc[name] for pc in per_cluster.values() if name in pc)
    out["per_cluster"] = per_cluster
    return out


# --- actions -------------------------------------------------------------------------------------------------


def _action_numbers(t: np.ndarray, p: np.ndarray, rare: Sequence[str]) -> dict[str, float]:
    cm = _confusion(t, p)
    rare_idx = [ACTION_INDEX[a] for a in rare]
    present = [i for i in rare_idx if cm[i].sum() + cm[:, i].sum() > 0]
    _, _, f1, _ = _prf(cm)
    return {"accuracy": float(np.mean(t == p)) if len(t) else float("nan"),
            "macro_f1": _macro(cm, None),
            "rare_macro_f1": float(f1[present].mean()) if present else float("nan")}


def score_actions(references, predictions, clusters: Sequence[int] | np.ndarray | None = None, *,
                  rare: Sequence[str] = DEFAULT_RARE, bootstrap: int = 0, seed: int = 0,
                  confidence: float = 0.95, progress: bool = False) -> dict:
    """Accuracy, macro-F1 and rare-action macro-F1 (pooled and per cluster), per-action P/R/F1, confusion matrix.

    ``rare_macro_f1`` averages F1 over the rare actions that occur in the references or
    the predictions; it is nan when none does.
    """
    t = to_indices(references, "references")
    p = to_indices(predictions, "predictions")
    if len(t) != len(p):
        raise BadInputError(f"predictions has {len(p)} items but references has {len(t)}", field="predictions")
    c = _clusters(clusters, len(t))
    cm = _confusion(t, p)
    precision, recall, f1, support = _prf(cm)
    population = _action_numbers(t, p, rare)
    per_cluster = {int(k): {**_action_numbers(t[c == k], p[c == k], rare), "n": int((c == k).sum())}
                   for k in np.unique(c)}
    out = _levels(per_cluster, population)
    out["per_action"] = {a: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                             "support": int(support[i])} for i, a in enumerate(ACTIONS)}
    out["confusion_matrix"] = cm.tolist()
    out["rare_actions"] = list(rare)

    def stat(idx: np.ndarray) -> dict[str, float]:
        res = _action_numbers(t[idx], p[idx], rare)
        cc = c[idx]
        for name in list(res):
            res[f"cluster_{name}"] = _mean(_action_numbers(t[idx][cc == k], p[idx][cc == k], rare)[name]
                                           for k in np.unique(cc))
        return res

    out["ci"] = bootstrap_ci(stat, c, resamples=bootstrap, seed=seed, confidence=confidence, estimates=out,
                             progress=progress, desc="bootstrap actions")
    return out


# --- texts ---------------------------------------------------------------------------------------------------


def _text_set_numbers(r_emb: np.ndarray, g_emb: np.ndarray, rows: np.ndarray) -> dict[str, float]:
    """Set metrics on the given rows (indices into both embedding arrays, repeats allowed).

    Embedding JS uses the distinct rows only: a row drawn twice by the bootstrap would
    add distance-0 pairs that are not in the data.
    """
    if not len(rows):
        return {k: float("nan") for k in ("avg_cosine", "max_cosine", "mean_max_cosine", "embedding_js")}
    mx, mean_mx = tm.max_cosine(r_emb[rows], g_emb[rows])
    distinct = np.unique(rows)
    return {"avg_cosine": tm.avg_cosine(r_emb[rows], g_emb[rows]), "max_cosine": mx,
            "mean_max_cosine": mean_mx, "embedding_js": tm.embedding_js(r_emb[distinct], g_emb[distinct])}


def score_texts(references: Sequence[str | None], predictions: Sequence[str | None],
                clusters: Sequence[int] | np.ndarray | None = None, *, embedder: TextEmbedder | None = None,
                bert_scorer=None, rouge_stemmer: bool = False, workers: int | None = None,
                bootstrap: int = 0, seed: int = 0, confidence: float = 0.95, max_rows: int = 2000,
                return_embeddings: bool = False, progress: bool = False) -> dict:
    """Stylistic fidelity of generated texts, on the rows whose reference has a text.

    A missing prediction text counts as the empty string. Without a ``bert_scorer`` the
    BERTScore entry is left out. ``return_embeddings`` adds ``_embeddings``: (rows,
    reference vectors, prediction vectors, term counts of the references then the
    predictions), so that nothing is embedded or tokenized twice.
    """
    n = len(references)
    if len(predictions) != n:
        raise BadInputError(f"predictions has {len(predictions)} items but references has {n}", field="predictions")
    if n == 0:
        raise BadInputError("references is empty", field="references")
    c_all = _clusters(clusters, n)
    keep = np.array([isinstance(r, str) and bool(r) for r in references])
    rows = np.flatnonzero(keep)
    if not len(rows):
        raise BadInputError("no reference has a text: text metrics need rows whose action carries text",
                            field="references")
    refs = [cast(str, references[i]) for i in rows.tolist()]  # each has a text (keep)
    gens = [predictions[i] or "" for i in rows.tolist()]
    c = c_all[rows]
    embedder = embedder or TextEmbedder()
    r_emb = embedder(refs, cache=True, progress=progress)
    g_emb = embedder(gens, cache=False, progress=progress)
    from blueprint.progress import progress_bar

    with progress_bar(total=3, desc="text metrics (ROUGE, BERTScore, terms)", unit="step",
                      enabled=progress) as bar:
        pairs = tm.rouge(gens, refs, use_stemmer=rouge_stemmer, workers=workers)
        bar.update(1)
        bert = bert_scorer.score(gens, refs)[2] if bert_scorer is not None else None
        bar.update(1)
        counts = tm.TermCounts(refs + gens)
        bar.update(1)
    m = len(refs)
    clusters_present = np.unique(c)

    def numbers(idx: np.ndarray) -> tuple[dict, dict]:
        cc = c[idx]
        groups = [idx[cc == k] for k in clusters_present if (cc == k).any()]
        j_pop, j_per = tm.tfidf_jaccard(counts, groups, [g + m for g in groups])
        pop = {**_text_set_numbers(r_emb, g_emb, idx), "tfidf_jaccard": j_pop}
        for j, name in enumerate(tm.ROUGE_TYPES):
            pop[name] = float(pairs[idx, j].mean())
        if bert is not None:
            pop["bertscore_f1"] = float(bert[idx].mean())
        per = {}
        for k, g, jac in zip([k for k in clusters_present if (cc == k).any()], groups, j_per):
            row = {**_text_set_numbers(r_emb, g_emb, g), "tfidf_jaccard": jac, "n": int(len(g))}
            for j, name in enumerate(tm.ROUGE_TYPES):
                row[name] = float(pairs[g, j].mean())
            if bert is not None:
                row["bertscore_f1"] = float(bert[g].mean())
            per[int(k)] = row
        return pop, per

    pop, per = numbers(np.arange(m))
    out = _levels(per, pop)
    out["n_text_rows"] = int(m)

    def stat(idx: np.ndarray) -> dict[str, float]:
        p, pc_ = numbers(idx)
        res = {k: v for k, v in p.items()}
        for name in p:
            res[f"cluster_{name}"] = _mean(row[name] for row in pc_.values())
        return res

    out["ci"] = bootstrap_ci(stat, c, resamples=bootstrap, seed=seed, confidence=confidence, estimates=out,
                             max_rows=max_rows, progress=progress, desc="bootstrap texts")
    if return_embeddings:
        out["_embeddings"] = (rows, r_emb, g_emb, counts)
        out["_pairs"] = (pairs, bert)  # per text row: ROUGE-1/2/L and BERTScore F1, for the per-sample file
    return out


# --- distribution --------------------------------------------------------------------------------------------


def score_distribution(references, predictions, clusters: Sequence[int] | np.ndarray | None = None, *,
                       reference_embeddings: np.ndarray | None = None,
                       prediction_embeddings: np.ndarray | None = None, embedding_rows: np.ndarray | None = None,
                       text_counts: tm.TermCounts | None = None, folds: int = 5, seed: int = 0, bootstrap: int = 0,
                       confidence: float = 0.95, max_rows: int | None = 2000, progress: bool = False) -> dict:
    """Action JS, the paper's diagonality, and distinguishability.

    ``reference_embeddings``/``prediction_embeddings`` are the text vectors of the rows
    ``embedding_rows`` (indices into the rows), and ``text_counts`` their term counts
    (references, then predictions); without them, distinguishability is nan and the
    diagonality rests on the action matrix alone. See :mod:`blueprint.metrics.diagonality`.
    """
    from blueprint.metrics import diagonality as diag

    t = to_indices(references, "references")
    p = to_indices(predictions, "predictions")
    if len(t) != len(p):
        raise BadInputError(f"predictions has {len(p)} items but references has {len(t)}", field="predictions")
    c = _clusters(clusters, len(t))
    ids = np.unique(c)
    emb = None
    text_pos = None
    if reference_embeddings is not None and prediction_embeddings is not None:
        emb = (reference_embeddings, prediction_embeddings)
        rows, text_pos = _text_positions(len(t), reference_embeddings, prediction_embeddings, embedding_rows)
    data = diag.PersonaOutputs(t, p, c, text_pos if text_counts is not None else None,
                               reference_embeddings, prediction_embeddings, text_counts)
    mats = diag.matrices(data)
    js_matrix = dist.action_similarity_matrix(t, p, c)[0]
    population = {"action_js": action_js(t, p), **diag.summarize(mats),
                  "action_js_diagonality": dist.diagonality(js_matrix)}
    per_cluster: dict[int, dict[str, float]] = {
        int(k): {"action_js": action_js(t[c == k], p[c == k]), "n": int((c == k).sum())} for k in ids}
    tells = None
    if emb is not None:
        tells = dist.Distinguishability(*emb, c[rows], ids, folds=folds, seed=seed, progress=progress)
        population["distinguishability"] = tells.accuracy
        for cluster, a in tells.per_cluster.items():
            per_cluster[cluster]["distinguishability"] = a
    else:  # no texts to tell apart: the number exists, and says it could not be measured
        population["distinguishability"] = float("nan")
    out = _levels(per_cluster, population)
    whole = [name for name in population if "diagonality" in name]
    for name in whole:  # one matrix over all clusters: the cluster level is the same number
        out[f"cluster_{name}"] = population[name]
    out["diagonality_chance"] = 1.0 / len(ids)
    out["diagonality_matrices"] = diag.to_json(mats)
    out["similarity_matrix"] = {"clusters": [int(k) for k in ids], "matrix": js_matrix.tolist()}

    def stat(idx: np.ndarray) -> dict[str, float]:
        tt, pp, cc = t[idx], p[idx], c[idx]
        res = {"action_js": action_js(tt, pp)}
        res["cluster_action_js"] = _mean(action_js(tt[cc == k], pp[cc == k]) for k in np.unique(cc))
        res.update(diag.summarize(diag.matrices(data, idx)))
        res["action_js_diagonality"] = dist.diagonality(dist.action_similarity_matrix(tt, pp, cc)[0])
        for name in whole:
            res[f"cluster_{name}"] = res[name]
        return res

    ci = bootstrap_ci(stat, c, resamples=bootstrap, seed=seed, confidence=confidence, estimates=out,
                      max_rows=max_rows, progress=progress, desc="bootstrap distributions")
    if tells is not None:
        ci.update(tells.intervals(out, resamples=bootstrap, seed=seed, confidence=confidence))
    out["ci"] = ci
    return out


def _text_positions(n: int, reference_embeddings: np.ndarray, prediction_embeddings: np.ndarray,
                    embedding_rows: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The rows that have embeddings, and each row's position among them (-1 for rows without)."""
    rows = np.arange(len(reference_embeddings)) if embedding_rows is None else np.asarray(embedding_rows)
    if len(rows) != len(reference_embeddings) or len(prediction_embeddings) != len(reference_embeddings):
        raise BadInputError("reference_embeddings, prediction_embeddings and embedding_rows differ in length",
                            field="embedding_rows")
    text_pos = np.full(n, -1, dtype=np.int64)
    text_pos[rows] = np.arange(len(rows))
    return rows, text_pos


# --- everything ----------------------------------------------------------------------------------------------


HEADLINE = ("accuracy", "macro_f1", "rare_macro_f1", "avg_cosine", "max_cosine", "mean_max_cosine", "embedding_js",
            "tfidf_jaccard", "rouge1", "rouge2", "rougeL", "bertscore_f1", "action_js", "diagonality",
            "diagonality_tfidf_jaccard", "diagonality_avg_cosine", "diagonality_max_cosine", "diagonality_action_f1",
            "diagonality_inverse_embedding_js", "action_js_diagonality", "distinguishability")


def score_all(reference_actions, predicted_actions, reference_texts, predicted_texts,
              clusters: Sequence[int] | np.ndarray | None = None, config: ScoreConfig | None = None) -> dict:
    """Every metric: ``results`` (population and ``cluster_*``), ``ci``, ``per_cluster``, ``per_action`` and more."""
    cfg = config or ScoreConfig()
    n = len(reference_actions)
    for name, seq in (("predicted_actions", predicted_actions), ("reference_texts", reference_texts),
                      ("predicted_texts", predicted_texts)):
        if len(seq) != n:
            raise BadInputError(f"{name} has {len(seq)} items but reference_actions has {n}", field=name)
    actions = score_actions(reference_actions, predicted_actions, clusters, rare=cfg.rare, bootstrap=cfg.bootstrap,
                            seed=cfg.seed, confidence=cfg.confidence, progress=cfg.progress)
    c = _clusters(clusters, n)
    ref_idx = to_indices(reference_actions, "reference_actions")
    pred_idx = to_indices(predicted_actions, "predicted_actions")
    has_text = np.array([ACTIONS[a] in TEXT_ACTIONS for a in ref_idx]) & np.array(
        [isinstance(x, str) and bool(x) for x in reference_texts])
    texts = None
    emb = (None, None, None, None)
    pair_scores = (None, None)
    if has_text.any():
        refs = [r if h else None for r, h in zip(reference_texts, has_text)]
        texts = score_texts(refs, list(predicted_texts), c, embedder=_embedder(cfg), bert_scorer=_bert_scorer(cfg),
                            rouge_stemmer=cfg.rouge_stemmer, workers=cfg.workers, bootstrap=cfg.bootstrap,
                            seed=cfg.seed, confidence=cfg.confidence, max_rows=cfg.bootstrap_max_rows,
                            return_embeddings=True, progress=cfg.progress)
        emb = texts.pop("_embeddings")
        pair_scores = texts.pop("_pairs")
    rows, r_emb, g_emb, counts = emb
    distribution = score_distribution(reference_actions, predicted_actions, c, reference_embeddings=r_emb,
                                      prediction_embeddings=g_emb, embedding_rows=rows, text_counts=counts,
                                      folds=cfg.folds, seed=cfg.seed, bootstrap=cfg.bootstrap,
                                      confidence=cfg.confidence, max_rows=cfg.bootstrap_max_rows,
                                      progress=cfg.progress)
    results, ci, per_cluster = _merge([f for f in (actions, texts, distribution) if f is not None])
    intervals, no_interval = split_ci(ci)
    samples = [{"cluster": int(c[i]), "gold": ACTIONS[ref_idx[i]], "predicted": ACTIONS[pred_idx[i]]}
               for i in range(n)]
    if rows is not None:
        pairs, bert = pair_scores
        for j, i in enumerate(rows.tolist()):
            samples[i].update({name: float(pairs[j, k]) for k, name in enumerate(tm.ROUGE_TYPES)})
            if bert is not None:
                samples[i]["bertscore_f1"] = float(bert[j])
    return {
        "samples": samples,
        "results": results,
        "ci": intervals,
        "no_interval": no_interval,
        "ci_method": f"percentile bootstrap centred on the estimate, {cfg.bootstrap} stratified resamples, "
                     f"{cfg.confidence:.0%} (blueprint.metrics.suite.interval)",
        "higher_is_better": higher_is_better(results),
        "targets": targets(results),
        "per_cluster": {int(k): v for k, v in sorted(per_cluster.items())},
        "per_action": actions["per_action"],
        "confusion_matrix": {"labels": list(ACTIONS), "matrix": actions["confusion_matrix"]},
        "similarity_matrix": distribution["similarity_matrix"],
        "diagonality_matrices": distribution["diagonality_matrices"],
        "diagonality_chance": distribution["diagonality_chance"],
        "n": {"rows": n, "text_rows": 0 if texts is None else texts["n_text_rows"]},
        "score_config": {k: v for k, v in asdict(cfg).items() if k != "progress"},
    }


def _embedder(cfg: ScoreConfig) -> TextEmbedder:
    return TextEmbedder(cfg.model, max_length=cfg.max_length, cache_dir=cfg.cache_dir)


def _bert_scorer(cfg: ScoreConfig) -> Any:
    """The BERTScore scorer of the config (its reference side cached beside the embeddings), or None."""
    if not cfg.bertscore:
        return None
    from blueprint.metrics.bertscore import BertScorer

    cache = None if cfg.cache_dir is None else (
        default_cache_dir().parent / "bertscore" if cfg.cache_dir == "default"
        else os.path.join(cfg.cache_dir, "bertscore"))
    return BertScorer(cfg.bertscore_model or cfg.model, cache_dir=cache)


def _merge(families: list[dict]) -> tuple[dict[str, float], dict[str, list[float] | str], dict[int, dict[str, Any]]]:
    """The headline numbers, their intervals and the per-cluster table of several families, in one."""
    results: dict[str, float] = {}
    ci: dict[str, list[float] | str] = {}
    per_cluster: defaultdict[int, dict[str, Any]] = defaultdict(dict)
    for fam in families:
        for k, v in fam.items():
            if isinstance(v, float) and (k in HEADLINE or k.removeprefix("cluster_") in HEADLINE):
                results[k] = v
        ci.update({k: v for k, v in fam.get("ci", {}).items() if k in results})
        for cid, row in fam["per_cluster"].items():
            per_cluster[cid].update({k: v for k, v in row.items() if k != "n"})
            per_cluster[cid].setdefault("n", row.get("n"))
    return results, ci, per_cluster
