"""Measuring the scrubber on labelled posts: the tests and the scrub benchmark read the same files this way.

A labelled file has one post per line; ``[[TYPE:text]]`` marks a PII span, ``\\uXXXX``
stands for that character (so hidden characters stay visible in review), and lines
starting with ``# `` are comments.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from blueprint.pii.scrubber import Scrubber

_MARK = re.compile(r"\[\[([A-Z_]+):(.+?)\]\]")
_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def read_labelled(path: str | os.PathLike[str]) -> list[tuple[str, set[tuple[int, int, str]]]]:
    """(post, {(start, end, type)}) for every post of a labelled file."""
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("# "):
            continue
        line = _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), line)
        text, spans, last = "", set(), 0
        for m in _MARK.finditer(line):
            text += line[last : m.start()]
            start = len(text)
            text += m.group(2)
            spans.add((start, len(text), m.group(1)))
            last = m.end()
        out.append((text + line[last:], spans))
    return out


def precision_recall(pairs: Iterable[tuple[str, set[tuple[int, int, str]]]],
                     scrubber: Scrubber | None = None) -> dict[str, dict[str, float]]:
    """Exact-span precision and recall per type and over all types (``all``), with the support."""
    scrubber = scrubber or Scrubber()
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    for text, want in pairs:
        got = {(x.start, x.end, x.type) for x in scrubber.spans(text)}
        for g in got:
            (tp if g in want else fp)[g[2]] += 1
        for w in want - got:
            fn[w[2]] += 1
    out = {}
    for t in sorted(set(tp) | set(fp) | set(fn)):
        out[t] = {"precision": tp[t] / max(1, tp[t] + fp[t]), "recall": tp[t] / max(1, tp[t] + fn[t]),
                  "support": tp[t] + fn[t]}
    total_tp, total_fp, total_fn = sum(tp.values()), sum(fp.values()), sum(fn.values())
    out["all"] = {"precision": total_tp / max(1, total_tp + total_fp),
                  "recall": total_tp / max(1, total_tp + total_fn), "support": total_tp + total_fn}
    return out
