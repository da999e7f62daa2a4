"""Bootstrap intervals: stratified resamples of the rows, and percentile intervals centred on the estimate.

Every headline number of a results file carries an interval from here
(:func:`bootstrap_ci`), or the reason it has none (:data:`NO_INTERVAL`). Resamples are
drawn inside each cluster, so each cluster keeps its share of the rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence

import numpy as np


def resample(clusters: np.ndarray, rng: np.random.Generator, max_rows: int | None = None) -> np.ndarray:
    """Row indices drawn with replacement inside each cluster (each keeps its share), at most ``max_rows``."""
    n = len(clusters)
    scale = 1.0 if max_rows is None or n <= max_rows else max_rows / n
    parts = []
    for c in np.unique(clusters):
        rows = np.flatnonzero(clusters == c)
        parts.append(rng.choice(rows, size=max(1, int(round(len(rows) * scale))), replace=True))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


NO_INTERVAL: dict[str, str] = {
    "max_cosine": "no interval: the bootstrap is inconsistent for a maximum (a resample's maximum never exceeds "
                  "the sample's, so its percentiles sit at or below the estimate)",
}
"""Statistics that get no bootstrap interval, with the reason (``cluster_<name>`` too)."""


def interval(draws: Sequence[float], estimate: float, confidence: float) -> list[float] | str:
    """A percentile interval of ``draws``, centred on ``estimate``; or the reason there is none.

    The percentile bootstrap assumes the resamples scatter around the estimate. Set
    statistics do not: a resample repeats rows, which lowers an average cosine, raises
    a divergence of histograms and shrinks a vocabulary, so on small clusters the plain
    percentiles can exclude the estimate. The interval keeps the resamples' spread on
    each side of their median and moves it onto the estimate:
    ``[estimate - (median - q_low), estimate + (q_high - median)]``; for an unbiased
    statistic this is the percentile interval. Every metric here lies in [0, 1] (cosines
    in [-1, 1]), and the interval is kept inside that range.
    """
    arr = np.asarray(draws, dtype=np.float64)
    arr = arr[~np.isnan(arr)]
    if not len(arr) or estimate != estimate:
        return "no interval: not measurable on the resamples"
    lo_q, med, hi_q = np.percentile(arr, [100 * (1 - confidence) / 2, 50, 100 * (1 + confidence) / 2])
    low, high = estimate - (med - lo_q), estimate + (hi_q - med)
    floor = -1.0 if estimate < 0 else 0.0
    return [float(max(low, floor)), float(min(high, max(1.0, estimate)))]


def bootstrap_ci(stat: Callable[[np.ndarray], dict[str, float]], clusters: np.ndarray, *, resamples: int,
                 seed: int, confidence: float, estimates: dict[str, float], max_rows: int | None = None,
                 progress: bool = False, desc: str = "bootstrap") -> dict[str, list[float] | str]:
    """Intervals of each number ``stat`` returns, over stratified resamples of the rows (see :func:`interval`).

    A value is ``[low, high]``, or a string saying why there is no interval.
    """
    if resamples <= 0 or not len(clusters):
        return {}
    from blueprint.progress import progress_bar

    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = defaultdict(list)
    with progress_bar(total=resamples, desc=desc, unit="resample", enabled=progress) as bar:
        for _ in range(resamples):
            for name, value in stat(resample(clusters, rng, max_rows)).items():
                draws[name].append(value)
            bar.update(1)
    out: dict[str, list[float] | str] = {}
    for name, vals in draws.items():
        reason = NO_INTERVAL.get(name.removeprefix("cluster_"))
        out[name] = reason if reason else interval(vals, estimates.get(name, float("nan")), confidence)
    return out


def split_ci(ci: dict[str, list[float] | str]) -> tuple[dict[str, list[float]], dict[str, str]]:
    """(intervals, reasons for the numbers without one)."""
    return ({k: v for k, v in ci.items() if not isinstance(v, str)},
            {k: v for k, v in ci.items() if isinstance(v, str)})
