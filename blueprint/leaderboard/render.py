"""The leaderboard: every results file in a folder, ranked, as a static site, Markdown and JSON.

The site has no external assets (inline CSS, JavaScript and SVG), so it opens from a
``file://`` URL with no network:

- ``index.html``: the table, sortable by any column (click a header), with every
  headline metric and its interval and the model's meta, and a chart of macro-F1 with
  its intervals;
- ``models/<n>.html``: per model, the per-cluster table, per-action F1 bars, the action
  confusion matrix and the diagonality heat maps;
- ``leaderboard.md`` and ``leaderboard.json``: the same rows.

The site is written in a temporary folder and renamed into place.
"""

from __future__ import annotations

import html
import os
import re
from pathlib import Path

import orjson

from blueprint._io import atomic_dir, read_json
from blueprint.actions import ACTIONS
from blueprint.errors import BadInputError
from blueprint.leaderboard.score import LEADERBOARD, results_schema
from blueprint.metrics.registry import get_metric

COLUMNS = ("model", "dataset config", "split", "n", *LEADERBOARD)
META_COLUMNS = ("parameters", "trained_on", "saw_train_split")


def collect(results_dir: str | os.PathLike[str]) -> list[dict]:
    """Read every ``*.json`` results file, checked against the results schema; rank by macro-F1, accuracy, name."""
    import jsonschema

    d = Path(results_dir)
    if not d.is_dir():
        raise BadInputError("no such results directory", path=d)
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
    rows.sort(key=lambda r: (-_num(r["results"]["macro_f1"]), -_num(r["results"]["accuracy"]), r["model_name"]))
    return rows


def _num(v) -> float:
    return v if isinstance(v, (int, float)) and v == v else float("-inf")


def _value(r: dict, m: str) -> float | None:
    v = r["results"].get(m)
    return float(v) if isinstance(v, (int, float)) and v == v else None


def _number(r: dict, m: str) -> str:
    if m not in r["results"]:  # an optional metric this submission was not scored on (no BERTScore, no texts)
        return "–"
    v = _value(r, m)
    if v is None:  # nan: not measurable for this submission
        return "n/a"
    ci = r.get("ci", {}).get(m)
    text = f"{v:.4f} ±{(ci[1] - ci[0]) / 2:.4f}" if ci else f"{v:.4f}"
    info = get_metric(m)
    return f"{text} (off by {info.distance(v):.4f})" if info.target is not None else text


def _sort_key(r: dict, m: str) -> float | None:
    """What a column sorts by: the value, or for a target metric its distance to the target (smaller first)."""
    v = _value(r, m)
    if v is None:
        return None
    info = get_metric(m)
    return info.distance(v) if info.target is not None else v


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


def as_json(rows: list[dict]) -> list[dict]:
    """The leaderboard's rows: rank, model, config, every headline metric with its interval, and the meta."""
    out = []
    for i, r in enumerate(rows, start=1):
        out.append({"rank": i, "model_name": r["model_name"], "dataset_config": r["config"]["dataset_config"],
                    "split": r["config"]["split"], "n": r["n-samples"]["evaluated"],
                    "results": {m: _value(r, m) for m in LEADERBOARD if m in r["results"]},
                    "ci": {m: r.get("ci", {}).get(m) for m in LEADERBOARD if r.get("ci", {}).get(m)},
                    "meta": (r.get("submission") or {}).get("meta", {}), "page": _page_name(i, r)})
    return out


# --- HTML --------------------------------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem;color:#1b1f24;max-width:1400px}
h1{margin-bottom:.2rem}p.note{color:#444;max-width:70rem}
table{border-collapse:collapse;font-size:.9rem;margin:1rem 0}
td,th{border:1px solid #d0d7de;padding:.3rem .55rem;text-align:right;white-space:nowrap}
th{background:#f6f8fa;cursor:pointer;user-select:none}th[aria-sort=ascending]::after{content:" ▲"}
th[aria-sort=descending]::after{content:" ▼"}td.l,th.l{text-align:left}tr:nth-child(even) td{background:#fbfbfc}
a{color:#0969da}figure{margin:1rem 0}figcaption{font-size:.85rem;color:#444}
.grid{display:flex;flex-wrap:wrap;gap:2rem}
"""

_SORT_JS = """
document.querySelectorAll('table.sortable').forEach(function (table) {
  var heads = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads, function (th, col) {
    th.addEventListener('click', function () {
      var asc = th.getAttribute('aria-sort') !== 'ascending';
      Array.prototype.forEach.call(heads, function (h) { h.removeAttribute('aria-sort'); });
      th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[col].getAttribute('data-sort'), y = b.cells[col].getAttribute('data-sort');
        var nx = parseFloat(x), ny = parseFloat(y);
        var cmp;
        if (x === '' && y === '') cmp = 0; else if (x === '') return 1; else if (y === '') return -1;
        else if (!isNaN(nx) && !isNaN(ny)) cmp = nx - ny; else cmp = x.localeCompare(y);
        return asc ? cmp : -cmp;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""


def _page(title: str, body: str, script: str = "") -> str:
    js = f"<script>{script}</script>" if script else ""
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>"
            f"<meta name=viewport content='width=device-width,initial-scale=1'><style>{_CSS}</style></head>"
            f"<body>{body}{js}</body></html>\n")


def _page_name(rank: int, r: dict) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", r["model_name"]).strip("-")[:60] or "model"
    return f"models/{rank:03d}-{slug}.html"


def _td(text: str, sort, left: bool = False, link: str | None = None) -> str:
    key = "" if sort is None else (f"{sort:.10g}" if isinstance(sort, float) else html.escape(str(sort)))
    inner = f"<a href='{html.escape(link)}'>{html.escape(text)}</a>" if link else html.escape(text)
    return f"<td{' class=l' if left else ''} data-sort='{key}'>{inner}</td>"


def _bar_chart(rows: list[dict], metric: str) -> str:
    """An SVG chart of one metric per model, with its interval as a whisker."""
    width, row_h, left = 760, 24, 220
    height = 40 + row_h * len(rows)
    scale = lambda v: left + (width - left - 40) * max(0.0, min(1.0, v))  # noqa: E731
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' role='img' "
             f"aria-label='{metric} per model'>"]
    for t in (0, 0.25, 0.5, 0.75, 1.0):
        x = scale(t)
        parts.append(f"<line x1='{x:.1f}' y1='20' x2='{x:.1f}' y2='{height - 10}' stroke='#e5e7eb'/>"
                     f"<text x='{x:.1f}' y='14' font-size='11' text-anchor='middle'>{t:g}</text>")
    for i, r in enumerate(rows):
        y = 28 + i * row_h
        v = _value(r, metric)
        parts.append(f"<text x='{left - 8}' y='{y + 12}' font-size='12' text-anchor='end'>"
                     f"{html.escape(r['model_name'][:32])}</text>")
        if v is None:
            continue
        parts.append(f"<rect x='{left}' y='{y + 2}' width='{scale(v) - left:.1f}' height='{row_h - 8}' "
                     f"fill='#4c78a8'><title>{metric} {v:.4f}</title></rect>")
        ci = r.get("ci", {}).get(metric)
        if ci:
            a, b = scale(ci[0]), scale(ci[1])
            parts.append(f"<line x1='{a:.1f}' y1='{y + row_h / 2 - 2}' x2='{b:.1f}' y2='{y + row_h / 2 - 2}' "
                         f"stroke='#111' stroke-width='1.5'/>")
    parts.append("</svg>")
    return "".join(parts)


def _heat(matrix, labels_x, labels_y, title: str, cell: int = 18) -> str:
    """An SVG heat map (white to blue), each cell with its value as a tooltip."""
    import numpy as np

    m = np.asarray(matrix, dtype=float)
    if m.size == 0:
        return ""
    finite = m[np.isfinite(m)]
    hi = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    left, top = 90, 70
    w, h = left + cell * m.shape[1] + 10, top + cell * m.shape[0] + 10
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' role='img' "
             f"aria-label='{html.escape(title)}'>"]
    for j, lab in enumerate(labels_x):
        x = left + j * cell + cell / 2
        parts.append(f"<text transform='translate({x:.1f},{top - 4}) rotate(-60)' font-size='10'>"
                     f"{html.escape(str(lab))}</text>")
    for i, lab in enumerate(labels_y):
        parts.append(f"<text x='{left - 4}' y='{top + i * cell + cell * 0.7:.1f}' font-size='10' "
                     f"text-anchor='end'>{html.escape(str(lab))}</text>")
        for j in range(m.shape[1]):
            v = m[i, j]
            t = 0.0 if not np.isfinite(v) else max(0.0, min(1.0, v / hi))
            colour = f"rgb({int(255 - 200 * t)},{int(255 - 140 * t)},{int(255 - 40 * t)})"
            parts.append(f"<rect x='{left + j * cell}' y='{top + i * cell}' width='{cell - 1}' height='{cell - 1}' "
                         f"fill='{colour}'><title>{html.escape(str(labels_y[i]))} / "
                         f"{html.escape(str(labels_x[j]))}: {v:.4g}</title></rect>")
    parts.append("</svg>")
    return f"<figure>{''.join(parts)}<figcaption>{html.escape(title)}</figcaption></figure>"


def index_page(rows: list[dict]) -> str:
    head = "".join(f"<th class=l>{html.escape(c)}</th>" if i < 3 else f"<th>{html.escape(c)}</th>"
                   for i, c in enumerate(("rank", *COLUMNS[:3])))
    head += "".join(f"<th title='{html.escape(_direction(c) if c in LEADERBOARD else '')}'>{html.escape(c)}</th>"
                    for c in COLUMNS[3:])
    head += "".join(f"<th class=l>{html.escape(c)}</th>" for c in META_COLUMNS)
    body_rows = []
    for i, r in enumerate(rows, start=1):
        cells = [_td(str(i), i), _td(r["model_name"], r["model_name"], True, _page_name(i, r)),
                 _td(r["config"]["dataset_config"], r["config"]["dataset_config"], True),
                 _td(r["config"]["split"], r["config"]["split"], True),
                 _td(str(r["n-samples"]["evaluated"]), r["n-samples"]["evaluated"])]
        cells += [_td(_number(r, m), _sort_key(r, m)) for m in LEADERBOARD]
        meta = (r.get("submission") or {}).get("meta", {})
        cells += [_td("" if meta.get(k) is None else str(meta.get(k)), meta.get(k), True) for k in META_COLUMNS]
        body_rows.append("<tr>" + "".join(cells) + "</tr>")
    note = ("Next-action prediction, ranked by macro-F1. Click a header to sort by it (distinguishability sorts by "
            "its distance to 0.5). <code>cluster_*</code> is the mean over persona clusters (for the text metrics, "
            "the paper's number); ± is half the 95% bootstrap interval; a dash: not scored. "
            + html.escape("; ".join(f"{m}: {_direction(m)}" for m in LEADERBOARD)) + ".")
    body = (f"<h1>BluePrint leaderboard</h1><p class=note>{note}</p>"
            f"<table class=sortable id=board><thead><tr>{head}</tr></thead><tbody>{''.join(body_rows)}</tbody>"
            f"</table><h2>Macro-F1 with its 95% interval</h2><figure id=chart>{_bar_chart(rows, 'macro_f1')}"
            "<figcaption>Macro-F1 per model; the whisker is the bootstrap interval.</figcaption></figure>")
    return _page("BluePrint leaderboard", body, _SORT_JS)


def model_page(rank: int, r: dict) -> str:
    name = r["model_name"]
    meta = (r.get("submission") or {}).get("meta", {})
    meta_rows = "".join(f"<tr><th class=l>{html.escape(k)}</th><td class=l>{html.escape(str(v))}</td></tr>"
                        for k, v in meta.items())
    headline = "".join(f"<tr><th class=l>{html.escape(m)}</th><td>{html.escape(_number(r, m))}</td></tr>"
                       for m in LEADERBOARD)
    per_cluster = r.get("per_cluster", {})
    keys = [k for k in ("n", "accuracy", "macro_f1", "action_js", "avg_cosine", "embedding_js", "tfidf_jaccard",
                        "bertscore_f1", "distinguishability") if any(k in v for v in per_cluster.values())]
    pc_head = "<th>cluster</th>" + "".join(f"<th>{html.escape(k)}</th>" for k in keys)
    pc_rows = []
    for cid, v in sorted(per_cluster.items(), key=lambda kv: int(kv[0])):
        cells = [_td(str(cid), int(cid))]
        for k in keys:
            x = v.get(k)
            shown = "–" if x is None else (str(x) if isinstance(x, int) else ("n/a" if x != x else f"{x:.4f}"))
            cells.append(_td(shown, x if isinstance(x, (int, float)) and x == x else None))
        pc_rows.append("<tr>" + "".join(cells) + "</tr>")
    f1 = {a: (r.get("per_action", {}).get(a) or {}).get("f1", 0.0) for a in ACTIONS}
    bars = _bar_chart([{"model_name": a, "results": {"f1": f1[a]}, "ci": {}} for a in ACTIONS], "f1")
    cm = r.get("confusion_matrix") or {}
    parts = [f"<p><a href='../index.html'>← leaderboard</a></p><h1>{html.escape(name)}</h1>",
             f"<p class=note>Rank {rank}; {html.escape(r['config']['dataset_config'])} / "
             f"{html.escape(r['config']['split'])}, {r['n-samples']['evaluated']} rows.</p>"]
    if meta_rows:
        parts.append(f"<h2>About the model</h2><table>{meta_rows}</table>")
    parts += [f"<h2>Headline metrics</h2><table>{headline}</table>",
              f"<h2>Per cluster</h2><table class=sortable id=clusters><thead><tr>{pc_head}</tr></thead>"
              f"<tbody>{''.join(pc_rows)}</tbody></table>",
              f"<h2>F1 per action</h2><figure id=per-action>{bars}</figure>", "<div class=grid>"]
    if cm.get("matrix"):
        parts.append(_heat(cm["matrix"], cm["labels"], cm["labels"], "Action confusion matrix (rows: real, "
                                                                      "columns: predicted)"))
    mats = r.get("diagonality_matrices") or {}
    for key in ("action_f1", "tfidf_jaccard", "avg_cosine", "max_cosine", "inverse_embedding_js"):
        if key in mats:
            clusters = mats.get("embedding_js_clusters" if key == "inverse_embedding_js" else
                                "clusters" if key == "action_f1" else "text_clusters", [])
            parts.append(_heat(mats[key], [f"m{c}" for c in clusters], [f"c{c}" for c in clusters],
                               f"Diagonality: {key} (row c: real cluster, column m: predictions for cluster m)"))
    parts.append("</div>")
    return _page(f"{name} · BluePrint", "".join(parts), _SORT_JS)


def render(results_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write the site (index.html, models/, leaderboard.md, leaderboard.json) to ``out_dir``, whole or not at all."""
    rows = collect(results_dir)
    out = Path(out_dir)
    with atomic_dir(out) as tmp:
        (tmp / "models").mkdir()
        (tmp / "index.html").write_text(index_page(rows), encoding="utf-8")
        for i, r in enumerate(rows, start=1):
            (tmp / _page_name(i, r)).write_text(model_page(i, r), encoding="utf-8")
        (tmp / "leaderboard.md").write_text(markdown(rows), encoding="utf-8")
        (tmp / "leaderboard.json").write_bytes(orjson.dumps(as_json(rows), option=orjson.OPT_INDENT_2))
    return {"markdown": out / "leaderboard.md", "html": out / "index.html", "json": out / "leaderboard.json"}

