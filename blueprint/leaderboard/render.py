"""The leaderboard: every results file in a folder, ranked, as Markdown and a static HTML page."""

from __future__ import annotations

import html
import os
from pathlib import Path

from blueprint._io import atomic_open, read_json
from blueprint.errors import BadInputError
from blueprint.leaderboard.score import LEADERBOARD, results_schema
from blueprint.metrics.registry import get_metric

COLUMNS = ("model", "dataset config", "split", "n", *LEADERBOARD)


def collect(results_dir: str | os.PathLike[str]) -> list[dict]:
    """Read every ``*.json`` results file; rank by macro-F1, then accuracy, then name."""
    d = Path(results_dir)
    if not d.is_dir():
        raise BadInputError("no such results directory", path=d)
    import jsonschema

    validator = jsonschema.Draft202012Validator(results_schema())
    rows = []
    for f in sorted(d.glob("*.json")):
        res = read_json(f)
        error = next(iter(sorted(validator.iter_errors(res), key=lambda e: list(e.path))), None)
        if error is not None:
            where = "/".join(str(p) for p in error.path) or None
            raise BadInputError(f"not a BluePrint results file: {error.message}", path=f, field=where)
        rows.append(res)
    if not rows:
        raise BadInputError("no results files (*.json) found", path=d)
    rows.sort(key=lambda r: (-r["results"]["macro_f1"], -r["results"]["accuracy"], r["model_name"]))
    return rows


def _number(r: dict, m: str) -> str:
    if m not in r["results"]:  # an optional metric this submission was not scored on (no BERTScore, no texts)
        return "–"
    v = r["results"][m]
    if v is None or v != v:  # nan: not measurable for this submission
        return "n/a"
    ci = r.get("ci", {}).get(m)
    text = f"{v:.4f} ±{(ci[1] - ci[0]) / 2:.4f}" if ci and ci[0] == ci[0] else f"{v:.4f}"
    info = get_metric(m)
    return f"{text} (off by {info.distance(v):.4f})" if info.target is not None else text


def _cells(r: dict) -> list[str]:
    return [r["model_name"], r["config"]["dataset_config"], r["config"]["split"],
            str(r["n-samples"]["evaluated"]), *(_number(r, m) for m in LEADERBOARD)]


def _direction(m: str) -> str:
    info = get_metric(m)
    if info.target is not None:
        return f"{info.target} is best (closest wins)"
    return "higher is better" if info.higher_is_better else "lower is better"


def markdown(rows: list[dict]) -> str:
    lines = ["# BluePrint leaderboard", "",
             "Next-action prediction. Ranked by macro-F1 (the mean of per-action F1, not accuracy). "
             "`cluster_*` is the mean over persona clusters; for average and max cosine, embedding JS and TF-IDF "
             "Jaccard it is the paper's number. ± is half the 95% bootstrap interval (none for max cosine: the "
             "bootstrap cannot bound a maximum). A dash: not scored for this submission.", "",
             "Directions: " + "; ".join(f"`{m}` {_direction(m)}" for m in LEADERBOARD) + ".", "",
             "| rank | " + " | ".join(COLUMNS) + " |", "|---|" + "---|" * len(COLUMNS)]
    for i, r in enumerate(rows, start=1):
        lines.append(f"| {i} | " + " | ".join(c.replace("|", "\\|") for c in _cells(r)) + " |")
    return "\n".join(lines) + "\n"


def html_page(rows: list[dict]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ("rank", *COLUMNS))
    body = "".join(
        "<tr>" + f"<td>{i}</td>" + "".join(f"<td>{html.escape(c)}</td>" for c in _cells(r)) + "</tr>"
        for i, r in enumerate(rows, start=1))
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>BluePrint leaderboard</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:2rem}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:right}td:nth-child(2),th:nth-child(2)"
        "{text-align:left}</style></head><body><h1>BluePrint leaderboard</h1>"
        "<p>Next-action prediction, ranked by macro-F1. <code>cluster_*</code> is the mean over persona "
        "clusters (for the text metrics, the paper's number); ± is half the 95% bootstrap interval. "
        + html.escape("; ".join(f"{m}: {_direction(m)}" for m in LEADERBOARD)) + ".</p>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></body></html>\n")


def render(results_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write ``leaderboard.md`` and ``index.html`` to ``out_dir``; return their paths."""
    rows = collect(results_dir)
    out = Path(out_dir)
    paths = {"markdown": out / "leaderboard.md", "html": out / "index.html"}
    with atomic_open(paths["markdown"], "w") as fh:
        fh.write(markdown(rows))
    with atomic_open(paths["html"], "w") as fh:
        fh.write(html_page(rows))
    return paths
