"""Next-action metrics: accuracy, macro-F1 as normally defined, per-action precision, recall and F1.

The paper's reference code reports an "F1" that equals accuracy: it counts every
mismatch as both a false positive and a false negative over the pooled data, so
precision = recall = accuracy. Here F1 is computed per action from that action's
true positives, false positives and false negatives, and macro-F1 is the unweighted
mean over the actions present in the references or the predictions (scikit-learn's
default label set), with 0 where a ratio is undefined.

Inputs are action names (``"like"``) or indices into :data:`blueprint.ACTIONS`.
Counting uses ``numpy.bincount`` over the 13x13 confusion matrix, so a million rows
take milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from blueprint.actions import ACTION_INDEX, ACTIONS
from blueprint.errors import BadInputError

N_ACTIONS = len(ACTIONS)


def to_indices(values: Sequence[str | int] | np.ndarray, name: str) -> np.ndarray:
    """Action names or indices -> int64 indices; a clear error naming the argument otherwise."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise BadInputError(f"must be a 1-D sequence of actions, got shape {arr.shape}", field=name)
    if arr.size == 0:
        raise BadInputError(f"{name} is empty", field=name)
    if arr.dtype.kind in "iu":
        if arr.min() < 0 or arr.max() >= N_ACTIONS:
            raise BadInputError(f"{name} holds action indices outside 0..{N_ACTIONS - 1}", field=name)
        return arr.astype(np.int64)
    out = np.empty(arr.size, dtype=np.int64)
    for i, v in enumerate(arr.tolist()):
        idx = ACTION_INDEX.get(v)
        if idx is None:
            raise BadInputError(f"{name}[{i}] = {v!r} is not an action; expected one of {list(ACTIONS)}", field=name)
        out[i] = idx
    return out


def _check_pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    t = to_indices(y_true, "references")
    p = to_indices(y_pred, "predictions")
    if len(t) != len(p):
        raise BadInputError(f"predictions and references differ in length: {len(p)} != {len(t)}", field="predictions")
    return t, p


def confusion_matrix(y_true, y_pred) -> np.ndarray:
    """13x13 counts: rows are references, columns predictions, in :data:`ACTIONS` order."""
    t, p = _check_pair(y_true, y_pred)
    return _confusion(t, p)


def _confusion(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    return np.bincount(t * N_ACTIONS + p, minlength=N_ACTIONS * N_ACTIONS).reshape(N_ACTIONS, N_ACTIONS)


def _prf(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    tp = np.diag(cm).astype(np.float64)
    pred = cm.sum(0).astype(np.float64)
    true = cm.sum(1).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(pred > 0, tp / pred, 0.0)
        recall = np.where(true > 0, tp / true, 0.0)
        denom = precision + recall
        f1 = np.where(denom > 0, 2 * precision * recall / denom, 0.0)
    return precision, recall, f1, true


def accuracy(y_true, y_pred) -> float:
    """Share of rows whose predicted action equals the reference."""
    t, p = _check_pair(y_true, y_pred)
    return float(np.mean(t == p))


def macro_f1(y_true, y_pred, labels: Sequence[str] | None = None) -> float:
    """Unweighted mean of per-action F1 over ``labels`` (default: actions seen in either input)."""
    t, p = _check_pair(y_true, y_pred)
    return _macro(_confusion(t, p), labels)


def _macro(cm: np.ndarray, labels: Sequence[str] | None) -> float:
    _, _, f1, _ = _prf(cm)
    if labels is None:
        present = (cm.sum(0) + cm.sum(1)) > 0
    else:
        present = np.zeros(N_ACTIONS, dtype=bool)
        present[to_indices(list(labels), "labels")] = True
    return float(f1[present].mean()) if present.any() else 0.0


def per_action_prf(y_true, y_pred) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support for each of the 13 actions."""
    t, p = _check_pair(y_true, y_pred)
    precision, recall, f1, support = _prf(_confusion(t, p))
    return {a: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                "support": int(support[i])} for i, a in enumerate(ACTIONS)}
