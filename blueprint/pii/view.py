"""The normalised view of a text that the recognizers read, mapped back to the original characters.

NFKC (fullwidth forms, compatibility characters), format characters removed
(zero-width spaces and joiners, soft hyphens, bidi marks), spaces and hyphens
unified (:func:`normalise`), then defanged forms rewritten (``[.]``, ``(dot)``,
``[at]``, ``hxxp``: :func:`refang`). Every character of the view knows the span of
the original it stands for, so a match in the view removes exactly its original text.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_HYPHENS = frozenset("\u2010\u2011\u2012\u2212\ufe63\uff0d")  # hyphen, non-breaking hyphen, figure dash, minus
# format characters (category Cf) and spaces (Zs) that NFKC leaves in place, and the hyphens above
_SPECIAL = re.compile("[\u00a0\u00ad\u0600-\u0605\u061c\u06dd\u070f\u1680\u180e\u2000-\u200f\u2010-\u2012"
                      "\u202a-\u202f\u205f-\u2064\u2066-\u206f\u2212\u3000\ufe63\ufeff\uff0d\ufff9-\ufffb"
                      "\u0890\u0891\u08e2\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001-\U000e007f]")


@dataclass(frozen=True)
class View:
    """A rewritten text and, for each of its characters, the span of the original it stands for.

    ``start[i]:end[i]`` is the original text behind ``text[i]``; a match ``[a, b)`` in the
    view covers ``original[start[a]:end[b - 1]]``, hidden characters inside it included.
    """

    text: str
    start: tuple[int, ...] | None  # None: the view is the original (nothing was rewritten)
    end: tuple[int, ...] | None

    def original(self, a: int, b: int) -> tuple[int, int]:
        if self.start is None or self.end is None:
            return a, b
        return self.start[a], self.end[b - 1]


def identity(text: str) -> View:
    return View(text, None, None)


def normalise(text: str) -> View:
    """NFKC (fullwidth forms, compatibility characters), format characters removed (zero-width spaces and
    joiners, soft hyphens, bidi marks), spaces and hyphens unified; each character mapped to its origin."""
    if text.isascii() or (unicodedata.is_normalized("NFKC", text) and not _SPECIAL.search(text)):
        return identity(text)  # most posts: nothing to rewrite (an emoji is NFKC-stable)
    chars: list[str] = []
    start: list[int] = []
    end: list[int] = []
    changed = False
    for i, c in enumerate(text):
        if c.isascii():
            out = c
        else:
            cat = unicodedata.category(c)
            if cat == "Cf":
                changed = True
                continue
            out = " " if cat == "Zs" else "-" if c in _HYPHENS else unicodedata.normalize("NFKC", c)
            changed = changed or out != c
        for ch in out:
            chars.append(ch)
            start.append(i)
            end.append(i + 1)
    if not changed:
        return identity(text)
    return View("".join(chars), tuple(start), tuple(end))


# Defanged and obfuscated forms, rewritten to what they stand for: "[.]", "(dot)", "[at]", "[:]", "hxxp"
_REFANG = re.compile(
    r"(?P<at>\s*[\[({]\s*(?:at|@)\s*[\])}]\s*)|(?P<dot>\s*[\[({]\s*(?:dot|\.)\s*[\])}]\s*)|(?P<colon>\[:\])"
    r"|(?P<hxxp>\bhxxp(?=s?(?::|\[:\])//))", re.IGNORECASE)
_REFANG_TO = {"at": "@", "dot": ".", "colon": ":", "hxxp": "http"}


def _maybe_defanged(text: str) -> bool:
    return ("[" in text or "(" in text or "{" in text) or "hxxp" in text or "HXXP" in text


def refang(view: View) -> View:
    """The view with defanged forms rewritten; each rewritten character stands for its whole original form."""
    text = view.text
    if not _maybe_defanged(text):
        return view
    pieces = list(_REFANG.finditer(text))
    if not pieces:
        return view
    base_start = view.start if view.start is not None else range(len(text))
    base_end = view.end if view.end is not None else range(1, len(text) + 1)
    chars: list[str] = []
    start: list[int] = []
    end: list[int] = []
    last = 0
    for m in pieces:
        chars.extend(text[last:m.start()])
        start.extend(base_start[last:m.start()])
        end.extend(base_end[last:m.start()])
        repl = _REFANG_TO[str(m.lastgroup)]  # every alternative is a named group
        a, b = base_start[m.start()], base_end[m.end() - 1]
        chars.extend(repl)
        start.extend([a] * len(repl))
        end.extend([b] * len(repl))
        last = m.end()
    chars.extend(text[last:])
    start.extend(base_start[last:])
    end.extend(base_end[last:])
    return View("".join(chars), tuple(start), tuple(end))

