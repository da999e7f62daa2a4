"""The leaderboard's charts as inline SVG (no external assets): a bar chart with intervals, and heat maps with
their colour scale."""

from __future__ import annotations

import html

import numpy as np


def value_of(r: dict, metric: str) -> float | None:
    v = r["results"].get(metric)
    return float(v) if isinstance(v, (int, float)) and v == v else None


def bar_chart(rows: list[dict], metric: str) -> str:
    """An SVG chart of one metric per model, with its interval as a whisker."""
    width, row_h, left = 760, 24, 220
    height = 40 + row_h * len(rows)

    def scale(v: float) -> float:
        return left + (width - left - 40) * max(0.0, min(1.0, v))

    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
             f"viewBox='0 0 {width} {height}' role='img' aria-label='{metric} per model'>"]
    for t in (0, 0.25, 0.5, 0.75, 1.0):
        x = scale(t)
        parts.append(f"<line x1='{x:.1f}' y1='20' x2='{x:.1f}' y2='{height - 10}' stroke='#e5e7eb'/>"
                     f"<text x='{x:.1f}' y='14' font-size='11' text-anchor='middle'>{t:g}</text>")
    for i, r in enumerate(rows):
        y = 28 + i * row_h
        v = value_of(r, metric)
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


def _colour(t: float) -> str:
    """White (0) to blue (1)."""
    return f"rgb({int(255 - 200 * t)},{int(255 - 140 * t)},{int(255 - 40 * t)})"


def heat_map(matrix, labels_x, labels_y, title: str, key: str, cell: int = 18) -> str:
    """An SVG heat map, white (0) to blue (the largest value), each cell with its value as a tooltip, and a colour
    scale beside it that names the values at its ends; a cell with no value is grey. ``key`` makes the scale's
    gradient id unique in its page."""
    m = np.asarray(matrix, dtype=float)
    if m.size == 0:
        return ""
    finite = m[np.isfinite(m)]
    hi = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    left, top, legend_w = 90, 70, 70
    grid_w, grid_h = cell * m.shape[1], cell * m.shape[0]
    w, h = left + grid_w + 20 + legend_w, top + max(grid_h, 120) + 10
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' viewBox='0 0 {w} {h}' role='img' "
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
            fill = _colour(max(0.0, min(1.0, v / hi))) if np.isfinite(v) else "#d0d0d0"
            shown = f"{v:.4g}" if np.isfinite(v) else "n/a (no rows)"
            parts.append(f"<rect x='{left + j * cell}' y='{top + i * cell}' width='{cell - 1}' height='{cell - 1}' "
                         f"fill='{fill}'><title>{html.escape(str(labels_y[i]))} / "
                         f"{html.escape(str(labels_x[j]))}: {shown}</title></rect>")
    parts.append(_legend(left + grid_w + 20, top, hi, f"scale-{key}"))
    parts.append("</svg>")
    return f"<figure>{''.join(parts)}<figcaption>{html.escape(title)}</figcaption></figure>"


def _legend(x: int, y: int, hi: float, gradient: str, height: int = 110, width: int = 12) -> str:
    """A vertical colour scale from 0 (bottom) to ``hi`` (top), with three labelled ticks."""
    stops = "".join(f"<stop offset='{t:.2f}' stop-color='{_colour(1 - t)}'/>" for t in np.linspace(0, 1, 5))
    ticks = "".join(f"<line x1='{x + width}' y1='{y + height * (1 - f):.1f}' x2='{x + width + 4}' "
                    f"y2='{y + height * (1 - f):.1f}' stroke='#333'/><text x='{x + width + 6}' "
                    f"y='{y + height * (1 - f) + 3.5:.1f}' font-size='10'>{hi * f:.3g}</text>"
                    for f in (0.0, 0.5, 1.0))
    return (f"<g class='legend' aria-label='colour scale: 0 to {hi:.3g}'><defs><linearGradient id='{gradient}' "
            f"x1='0' y1='0' x2='0' y2='1'>{stops}</linearGradient></defs>"
            f"<rect x='{x}' y='{y}' width='{width}' height='{height}' fill='url(#{gradient})' "
            f"stroke='#999'/>{ticks}</g>")
