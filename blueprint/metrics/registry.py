"""The registry of headline metrics: each name with its direction and family.

Lookups fail loudly: an unknown name gives the closest names and the full list.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass


@dataclass(frozen=True)
class MetricInfo:
    name: str
    higher_is_better: bool | None  # None: neither; the metric has a target value
    family: str  # action, text or distribution
    description: str
    target: float | None = None  # the ideal value, for metrics where both directions are bad

    def distance(self, value: float) -> float:
        """How far a value is from the best: |value - target| for a target metric, else the value itself."""
        return abs(value - self.target) if self.target is not None else value


_REGISTRY: dict[str, MetricInfo] = {}


def register_metric(name: str, *, higher_is_better: bool | None, family: str, description: str,
                    target: float | None = None) -> MetricInfo:
    if name in _REGISTRY:
        raise ValueError(f"metric {name!r} is registered twice")
    if (higher_is_better is None) == (target is None):
        raise ValueError(f"metric {name!r} needs either a direction or a target, not both")
    info = MetricInfo(name, higher_is_better, family, description, target)
    _REGISTRY[name] = info
    return info


def get_metric(name: str) -> MetricInfo:
    """The metric called ``name`` (``cluster_<name>`` gives the same metric, averaged over clusters)."""
    base = name[len("cluster_"):] if name.startswith("cluster_") else name
    if base not in _REGISTRY:
        close = difflib.get_close_matches(base, _REGISTRY, n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise KeyError(f"Unknown metric {name!r}.{hint} Available: {sorted(_REGISTRY)}")
    return _REGISTRY[base]


def metric_names(family: str | None = None) -> list[str]:
    return [n for n, m in _REGISTRY.items() if family is None or m.family == family]


def higher_is_better(names) -> dict[str, bool | None]:
    """Each metric's direction; None for a metric with a target value (see :func:`targets`)."""
    return {n: get_metric(n).higher_is_better for n in names}


def targets(names) -> dict[str, float]:
    """The target value of each metric that has one (distinguishability: 0.5)."""
    return {n: t for n in names if (t := get_metric(n).target) is not None}


_DIAGONAL = "share of the diagonal in the cluster x model matrix of "
for _name, _hib, _fam, _desc in [
    ("accuracy", True, "action", "share of rows whose predicted action is the reference action"),
    ("macro_f1", True, "action", "unweighted mean of per-action F1 over the actions present"),
    ("rare_macro_f1", True, "action", "macro-F1 over the rare actions only"),
    ("avg_cosine", True, "text", "cosine of the mean generated and mean real text embeddings"),
    ("max_cosine", True, "text", "best cosine of any generated text to any real text"),
    ("mean_max_cosine", True, "text", "mean over generated texts of their best cosine to a real text"),
    ("embedding_js", False, "text", "JS divergence (log2) of within-set pairwise cosine-distance histograms"),
    ("tfidf_jaccard", True, "text", "Jaccard overlap of the top-100 TF-IDF terms of generated and real texts"),
    ("rouge1", True, "text", "ROUGE-1 F1 between each generated text and its reference (rouge-score)"),
    ("rouge2", True, "text", "ROUGE-2 F1 between each generated text and its reference (rouge-score)"),
    ("rougeL", True, "text", "ROUGE-L F1 between each generated text and its reference (rouge-score)"),
    ("bertscore_f1", True, "text", "BERTScore F1 between each generated text and its reference (bert-score)"),
    ("action_js", False, "distribution", "JS divergence (log2) of predicted and real action distributions"),
    ("diagonality", True, "distribution", "the paper's persona specificity: mean diagonality of its five "
                                          "cluster x model matrices; chance is 1/k"),
    ("diagonality_tfidf_jaccard", True, "distribution", _DIAGONAL + "TF-IDF Jaccard"),
    ("diagonality_avg_cosine", True, "distribution", _DIAGONAL + "average cosine"),
    ("diagonality_max_cosine", True, "distribution", _DIAGONAL + "max cosine"),
    ("diagonality_action_f1", True, "distribution", _DIAGONAL + "action F1 (multiset overlap)"),
    ("diagonality_inverse_embedding_js", True, "distribution", _DIAGONAL + "1 / (1 + embedding JS)"),
    ("action_js_diagonality", True, "distribution", _DIAGONAL + "1 - action JS (this project's first construct)"),
]:
    register_metric(_name, higher_is_better=_hib, family=_fam, description=_desc)
register_metric("distinguishability", higher_is_better=None, target=0.5, family="distribution",
                description="cross-validated accuracy of a classifier telling generated from real text embeddings; "
                            "0.5 is ideal, and 0 is as bad as 1: ranked by the distance to 0.5")


_UNDEFINED = {"action": "no row of an action it averages", "text": "no row with a text on both sides",
              "distribution": "too few rows with a text on both sides"}


def why_undefined(name: str) -> str:
    """Why a metric can be undefined (nan) on some rows, in a few words: what a report prints instead of "nan"."""
    base = name[len("cluster_"):] if name.startswith("cluster_") else name
    if base == "rare_macro_f1":
        return "no rare action among the rows"
    if base == "accuracy":
        return "no row"
    try:
        return _UNDEFINED.get(get_metric(base).family, "not defined on these rows")
    except KeyError:
        return "not defined on these rows"


def shown(name: str, value) -> str:
    """A metric's value for people: four decimals, or "n/a (why)" for nan or a missing value (never "nan")."""
    if isinstance(value, (int, float)) and value == value:
        return f"{value:.4f}"
    return f"n/a ({why_undefined(name)})"
