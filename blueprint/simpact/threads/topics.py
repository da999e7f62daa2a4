"""Topic keywords: the lists that decide which posts are on topic, and the one regex that matches them.

A list file has one keyword per line; ``# `` starts a comment; ``#tag`` is a keyword;
``word*`` matches any ending. The shipped default is the 2025 Canadian federal
election list (``blueprint/resources/topics/canada_2025.txt``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from blueprint.errors import BadInputError

DEFAULT_TOPICS = "canada_2025"


def read_keywords(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """Keywords from a list file: one per line; ``# `` starts a comment; ``#tag`` is a keyword."""
    p = Path(path)
    if not p.is_file():
        raise BadInputError("no such keyword file", path=p, field="topics")
    return _parse_keywords(p.read_text(encoding="utf-8"), str(p))


def _parse_keywords(text: str, source: str) -> tuple[str, ...]:
    out = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        word = line.strip()
        if not word or word == "#" or word.startswith("# "):
            continue
        word = word.lstrip("#").strip().lower()
        if not word or word == "*":
            raise BadInputError(f"empty keyword {line!r}", path=source, line=lineno)
        out.append(word)
    if not out:
        raise BadInputError("the keyword list is empty", path=source)
    return tuple(dict.fromkeys(out))


def default_keywords() -> tuple[str, ...]:
    """The shipped keyword list for the 2025 Canadian federal election."""
    text = resources.files("blueprint").joinpath(f"resources/topics/{DEFAULT_TOPICS}.txt").read_text("utf-8")
    return _parse_keywords(text, f"blueprint/resources/topics/{DEFAULT_TOPICS}.txt")


def keyword_pattern(keywords: Sequence[str]) -> re.Pattern:
    """One case-insensitive regex for whole-word keywords; ``word*`` matches any ending."""
    parts = []
    for k in sorted(set(keywords), key=len, reverse=True):
        if k.endswith("*"):
            parts.append(re.escape(k[:-1]) + r"[\w'-]*")
        else:
            parts.append(re.escape(k))
    return re.compile(r"(?<![\w'])(?:" + "|".join(parts) + r")(?![\w'])", re.IGNORECASE)



def topic_keywords(sources: Sequence[str]) -> tuple[str, ...] | None:
    """The keywords of several lists, in order, each once: ``default`` is the shipped list, any other value a
    list file; ``["none"]`` alone means no topic filter (None)."""
    if [s.lower() for s in sources] == ["none"]:
        return None
    words: list[str] = []
    for source in sources:
        words.extend(default_keywords() if source == "default" else read_keywords(source))
    return tuple(dict.fromkeys(words))
