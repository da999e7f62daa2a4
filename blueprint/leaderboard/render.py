"""The leaderboard: every results file in a folder, ranked, as a static site, Markdown and JSON.

Only results scored on the same rows of the same dataset build are ranked together
(:mod:`blueprint.leaderboard.groups`): each group gets its own table, with the build's
fingerprint, and every group after the first says why it stands apart.

The site has no external assets (inline CSS, JavaScript and SVG), so it opens from a
``file://`` URL with no network:

- ``index.html``: a table per group, sortable by any column (click a header), with every
  headline metric and its interval and the model's meta, and a chart of macro-F1 with
  its intervals; a wide table scrolls inside its frame, the model column stays in view;
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
from typing import Any

import orjson

from blueprint._io import atomic_dir
from blueprint.actions import ACTIONS
from blueprint.errors import BadInputError
from blueprint.leaderboard.charts import bar_chart, heat_map, value_of
from blueprint.leaderboard.groups import Group, collect, group, raise_if_mixed, short
from blueprint.leaderboard.score import LEADERBOARD
from blueprint.metrics.config import MIN_ROWS
from blueprint.metrics.registry import get_metric, why_undefined

__all__ = ["collect", "group", "render", "markdown", "as_json", "index_page", "model_page"]

COLUMNS = ("model", "dataset config", "split", "n", *LEADERBOARD)
META_COLUMNS = ("parameters", "trained_on", "saw_train_split")


def _number(r: dict, m: str) -> str:
    if m not in r["results"]:  # an optional metric this submission was not scored on (no BERTScore, no texts)
        return "–"
    v = value_of(r, m)
    if v is None:  # nan: not measurable for this submission
        return f"n/a ({why_undefined(m)})"
    ci = r.get("ci", {}).get(m)
    text = f"{v:.4f} ±{(ci[1] - ci[0]) / 2:.4f}" if ci else f"{v:.4f}"
    info = get_metric(m)
    return f"{text} (off by {info.distance(v):.4f})" if info.target is not None else text


def _sort_key(r: dict, m: str) -> float | None:
    """What a column sorts by: the value, or for a target metric its distance to the target (smaller first)."""
    v = value_of(r, m)
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


_NOTE = ("Next-action prediction. Only results scored on the same rows of the same dataset build are ranked "
         "together: one table per group, each with its build's fingerprint. Ranked by macro-F1 (the mean of "
         "per-action F1, not accuracy). `cluster_*` is the mean over persona clusters; for average and max cosine, "
         "embedding JS and TF-IDF Jaccard it is the paper's number. ± is half the 95% bootstrap interval (none for "
         "max cosine: the bootstrap cannot bound a maximum). A dash: not scored for this submission; n/a: not "
         f"defined on its rows. Fewer than {MIN_ROWS} rows cannot be read (see the dataset card).")


def markdown(rows: list[dict]) -> str:
    lines = ["# BluePrint leaderboard", "", _NOTE, "",
             "Directions: " + "; ".join(f"`{m}` {_direction(m)}" for m in LEADERBOARD) + "."]
    for g in group(rows):
        lines += ["", f"## {g.label}", ""]
        if g.why_apart:
            lines += [g.why_apart, ""]
        if g.n < MIN_ROWS:
            lines += [_too_few(g.n), ""]
        lines += ["| rank | " + " | ".join(COLUMNS) + " |", "|---|" + "---|" * len(COLUMNS)]
        for i, r in enumerate(g.rows, start=1):
            lines.append(f"| {i} | " + " | ".join(c.replace("|", "\\|") for c in _cells(r)) + " |")
    return "\n".join(lines) + "\n"


def _too_few(n: int) -> str:
    return (f"Only {n} rows: too few to read (under {MIN_ROWS}); the ranks of this group are mostly chance.")


SUMMARY_COLUMNS = (("macro-F1", "macro_f1"), ("accuracy", "accuracy"), ("rare macro-F1", "rare_macro_f1"),
                   ("action JS (lower is better)", "action_js"), ("BERTScore F1", "bertscore_f1"),
                   ("avg cosine (paper's, per cluster)", "cluster_avg_cosine"), ("diagonality", "diagonality"),
                   ("distinguishability (0.5 best)", "distinguishability"))


def summary_table(rows: list[dict]) -> str:
    """The README's table of results: one group's rows, ranked, as a Markdown table of the headline metrics
    (three decimals, ± half the 95% interval), preceded by a line that says what was scored. The README's table
    of the demo's baselines is this function's output for a demo run (``tests/test_demo.py`` holds it to that)."""
    groups = group(rows)
    if len(groups) != 1:
        raise BadInputError(f"the results form {len(groups)} groups (another build, config, split or subset); a "
                            "summary table ranks one", field="results")
    g = groups[0]
    first = g.rows[0]
    chance = first.get("diagonality_chance")
    heads = [h if m != "diagonality" or chance is None else f"diagonality (chance {chance:.2f})"
             for h, m in SUMMARY_COLUMNS]
    lines = [f"{g.key.dataset_config}/{g.key.split}, {g.n} rows of which {first['n-samples']['text_rows']} carry "
             "text; ± is half the 95% bootstrap interval:", "",
             "| model | " + " | ".join(heads) + " |", "|---" * (len(heads) + 1) + "|"]
    for r in g.rows:
        cells = []
        for _, m in SUMMARY_COLUMNS:
            v, ci = value_of(r, m), r.get("ci", {}).get(m)
            cells.append("–" if m not in r["results"] else f"n/a ({why_undefined(m)})" if v is None else
                         f"{v:.3f} ±{(ci[1] - ci[0]) / 2:.3f}" if ci and ci[1] > ci[0] else f"{v:.3f}")
        lines.append(f"| {r['model_name']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def as_json(rows: list[dict]) -> list[dict]:
    """The leaderboard's rows: the group (fingerprint, config, split, rows, subset), the rank inside it, the model,
    every headline metric with its interval, the meta and the model's page."""
    out = []
    for gi, g in enumerate(group(rows), start=1):
        about = {"index": gi, "label": g.label, "dataset_fingerprint": g.key.fingerprint,
                 "dataset_config": g.key.dataset_config, "split": g.key.split, "ids_sha256": g.key.ids,
                 "partial": g.key.partial, "why_apart": g.why_apart or None}
        for i, r in enumerate(g.rows, start=1):
            out.append({"group": about, "rank": i, "model_name": r["model_name"],
                        "dataset_config": r["config"]["dataset_config"], "split": r["config"]["split"],
                        "n": r["n-samples"]["evaluated"], "n-samples": r["n-samples"],
                        "results": {m: value_of(r, m) for m in LEADERBOARD if m in r["results"]},
                        "ci": {m: r.get("ci", {}).get(m) for m in LEADERBOARD if r.get("ci", {}).get(m)},
                        "meta": (r.get("submission") or {}).get("meta", {}), "page": _page_name(gi, i, r)})
    return out


# --- HTML --------------------------------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem;color:#1b1f24;max-width:1400px}
h1{margin-bottom:.2rem}p.note{color:#444;max-width:70rem}
table{border-collapse:collapse;font-size:.9rem;margin:1rem 0}
td,th{border:1px solid #d0d7de;padding:.3rem .55rem;text-align:right;white-space:nowrap}
th{background:#f6f8fa;cursor:pointer;user-select:none}th[aria-sort=ascending]::after{content:" ▲"}
th[aria-sort=descending]::after{content:" ▼"}td.l,th.l{text-align:left}tr:nth-child(even) td{background:#fbfbfc}
a{color:#0969da}figure{margin:1rem 0;max-width:100%}svg{max-width:100%;height:auto}
figcaption{font-size:.85rem;color:#444}
.grid{display:flex;flex-wrap:wrap;gap:2rem}p.why{color:#8a4b00;max-width:70rem}
.scroll{overflow-x:auto;max-width:100%}.scroll table{margin:0}
table.board td:nth-child(1),table.board th:nth-child(1){position:sticky;left:0;z-index:1;box-sizing:border-box;
width:3rem;min-width:3rem;max-width:3rem}
table.board td:nth-child(2),table.board th:nth-child(2){position:sticky;left:3rem;z-index:1;
box-shadow:2px 0 0 #d0d7de}
table.board td:nth-child(-n+2){background:#fff}table.board tr:nth-child(even) td:nth-child(-n+2){background:#fbfbfc}
tr.small td{color:#8b949e}
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


def _page_name(group_index: int, rank: int, r: dict) -> str:
    """A model's page, unique across groups: ``models/003-name.html`` in the first group, ``models/g2-001-...``
    in the second."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", r["model_name"]).strip("-")[:60] or "model"
    prefix = "" if group_index == 1 else f"g{group_index}-"
    return f"models/{prefix}{rank:03d}-{slug}.html"


def _td(text: str, sort, left: bool = False, link: str | None = None) -> str:
    key = "" if sort is None else (f"{sort:.10g}" if isinstance(sort, float) else html.escape(str(sort)))
    inner = f"<a href='{html.escape(link)}'>{html.escape(text)}</a>" if link else html.escape(text)
    return f"<td{' class=l' if left else ''} data-sort='{key}'>{inner}</td>"


def _board(g: Group, gi: int) -> str:
    """One group's table (sortable; it scrolls inside its frame, the rank and model columns stay in view), and
    its macro-F1 chart."""
    head = "".join(f"<th class=l>{html.escape(c)}</th>" if i < 3 else f"<th>{html.escape(c)}</th>"
                   for i, c in enumerate(("rank", *COLUMNS[:3])))
    head += "".join(f"<th title='{html.escape(_direction(c) if c in LEADERBOARD else '')}'>{html.escape(c)}</th>"
                    for c in COLUMNS[3:])
    head += "".join(f"<th class=l>{html.escape(c)}</th>" for c in META_COLUMNS)
    body_rows = []
    for i, r in enumerate(g.rows, start=1):
        cells = [_td(str(i), i), _td(r["model_name"], r["model_name"], True, _page_name(gi, i, r)),
                 _td(r["config"]["dataset_config"], r["config"]["dataset_config"], True),
                 _td(r["config"]["split"], r["config"]["split"], True),
                 _td(str(r["n-samples"]["evaluated"]), r["n-samples"]["evaluated"])]
        cells += [_td(_number(r, m), _sort_key(r, m)) for m in LEADERBOARD]
        meta = (r.get("submission") or {}).get("meta", {})
        cells += [_td("" if meta.get(k) is None else str(meta.get(k)), meta.get(k), True) for k in META_COLUMNS]
        body_rows.append("<tr>" + "".join(cells) + "</tr>")
    suffix = "" if gi == 1 else f"-{gi}"
    why = f"<p class=why>{html.escape(g.why_apart)}</p>" if g.why_apart else ""
    small = f"<p class=why>{html.escape(_too_few(g.n))}</p>" if g.n < MIN_ROWS else ""
    return (f"<section class=group id=group{suffix}><h2>{html.escape(g.label)}</h2>{why}{small}"
            f"<p class=note>Dataset build <code>{html.escape(g.key.fingerprint or 'unrecorded')}</code>.</p>"
            f"<div class=scroll><table class='sortable board' id=board{suffix}><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body_rows)}</tbody></table></div>"
            f"<h3>Macro-F1 with its 95% interval</h3><figure id=chart{suffix}>{bar_chart(g.rows, 'macro_f1')}"
            "<figcaption>Macro-F1 per model; the whisker is the bootstrap interval.</figcaption></figure></section>")


def index_page(rows: list[dict]) -> str:
    groups = group(rows)
    note = ("Next-action prediction, ranked by macro-F1. Click a header to sort by it (distinguishability sorts by "
            "its distance to 0.5). <code>cluster_*</code> is the mean over persona clusters (for the text metrics, "
            "the paper's number); ± is half the 95% bootstrap interval; a dash: not scored; n/a: not defined on "
            "the rows. " + html.escape("; ".join(f"{m}: {_direction(m)}" for m in LEADERBOARD)) + ".")
    apart = ""
    if len(groups) > 1:
        apart = (f"<p class=why>These results were scored on {len(groups)} different things (another dataset build, "
                 "config, split or subset) and cannot be compared: each group is ranked on its own.</p>")
    body = (f"<h1>BluePrint leaderboard</h1><p class=note>{note}</p>{apart}"
            + "".join(_board(g, gi) for gi, g in enumerate(groups, start=1)))
    return _page("BluePrint leaderboard", body, _SORT_JS)


def _cluster_cell(k: str, x) -> str:
    if x is None:
        return _td("–", None)
    if isinstance(x, float) and x != x:  # nan: say so, and why, never print it as a number
        return f"<td data-sort='' title='{html.escape(why_undefined(k))}'>n/a</td>"
    return _td(str(x) if isinstance(x, int) else f"{x:.4f}", x)


def _per_cluster(r: dict) -> str:
    """The per-cluster table: n first, and every row under :data:`MIN_ROWS` greyed and marked too small."""
    per_cluster = r.get("per_cluster", {})
    keys = [k for k in ("n", "accuracy", "macro_f1", "action_js", "avg_cosine", "embedding_js", "tfidf_jaccard",
                        "bertscore_f1", "distinguishability") if any(k in v for v in per_cluster.values())]
    head = "<th>cluster</th>" + "".join(f"<th>{html.escape(k)}</th>" for k in keys) + "<th class=l>readable</th>"
    rows = []
    for cid, v in sorted(per_cluster.items(), key=lambda kv: int(kv[0])):
        n = v.get("n")
        small = isinstance(n, int) and n < MIN_ROWS
        cells = [_td(str(cid), int(cid)), *(_cluster_cell(k, v.get(k)) for k in keys),
                 _td(f"too small (n < {MIN_ROWS})" if small else "yes", int(not small), True)]
        rows.append(f"<tr{' class=small' if small else ''}>" + "".join(cells) + "</tr>")
    return (f"<h2>Per cluster</h2><p class=note>A cluster with fewer than {MIN_ROWS} rows is greyed: its scores "
            "cannot be read. n/a: the metric is not defined on its rows (hover for why).</p>"
            f"<div class=scroll><table class=sortable id=clusters><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def model_page(g: Group, gi: int, rank: int, r: dict) -> str:
    name = r["model_name"]
    meta = (r.get("submission") or {}).get("meta", {})
    meta_rows = "".join(f"<tr><th class=l>{html.escape(k)}</th><td class=l>{html.escape(str(v))}</td></tr>"
                        for k, v in meta.items())
    headline = "".join(f"<tr><th class=l>{html.escape(m)}</th><td>{html.escape(_number(r, m))}</td></tr>"
                       for m in LEADERBOARD)
    f1 = {a: (r.get("per_action", {}).get(a) or {}).get("f1", 0.0) for a in ACTIONS}
    bars = bar_chart([{"model_name": a, "results": {"f1": f1[a]}, "ci": {}} for a in ACTIONS], "f1")
    cm = r.get("confusion_matrix") or {}
    parts = [f"<p><a href='../index.html'>← leaderboard</a></p><h1>{html.escape(name)}</h1>",
             f"<p class=note>Rank {rank} of {len(g.rows)} in {html.escape(g.label)} (build "
             f"<code>{html.escape(short(g.key.fingerprint))}</code>).</p>"]
    if g.why_apart:
        parts.append(f"<p class=why>{html.escape(g.why_apart)}</p>")
    if meta_rows:
        parts.append(f"<h2>About the model</h2><table>{meta_rows}</table>")
    parts += [f"<h2>Headline metrics</h2><table>{headline}</table>", _per_cluster(r),
              f"<h2>F1 per action</h2><figure id=per-action>{bars}</figure>", "<div class=grid>"]
    if cm.get("matrix"):
        parts.append(heat_map(cm["matrix"], cm["labels"], cm["labels"], "Action confusion matrix (rows: real, "
                              "columns: predicted; the scale is the count of rows)", "confusion"))
    mats = r.get("diagonality_matrices") or {}
    for key in ("action_f1", "tfidf_jaccard", "avg_cosine", "max_cosine", "inverse_embedding_js"):
        if key in mats:
            clusters = mats.get("embedding_js_clusters" if key == "inverse_embedding_js" else
                                "clusters" if key == "action_f1" else "text_clusters", [])
            parts.append(heat_map(mats[key], [f"m{c}" for c in clusters], [f"c{c}" for c in clusters],
                                  f"Diagonality: {key} (row c: real cluster, column m: predictions for cluster m)",
                                  key))
    parts.append("</div>")
    return _page(f"{name} · BluePrint", "".join(parts), _SORT_JS)


def render(results_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str], *, strict: bool = False
           ) -> dict[str, Any]:
    """Write the site (index.html, models/, leaderboard.md, leaderboard.json) to ``out_dir``, whole or not at all.

    With ``strict``, a folder whose results cannot all be ranked together is refused (nothing is written)."""
    rows = collect(results_dir)
    groups = group(rows)
    if strict:
        raise_if_mixed(groups, results_dir)
    out = Path(out_dir)
    with atomic_dir(out) as tmp:
        (tmp / "models").mkdir()
        (tmp / "index.html").write_text(index_page(rows), encoding="utf-8")
        for gi, g in enumerate(groups, start=1):
            for i, r in enumerate(g.rows, start=1):
                (tmp / _page_name(gi, i, r)).write_text(model_page(g, gi, i, r), encoding="utf-8")
        (tmp / "leaderboard.md").write_text(markdown(rows), encoding="utf-8")
        (tmp / "leaderboard.json").write_bytes(orjson.dumps(as_json(rows), option=orjson.OPT_INDENT_2))
    return {"markdown": out / "leaderboard.md", "html": out / "index.html", "json": out / "leaderboard.json",
            "groups": len(groups)}
