"""The texts of synthetic posts: each persona's voice, with PII planted at known character spans."""

from __future__ import annotations

import random

from blueprint.synth import pii as pii_gen
from blueprint.synth.personas import FACTS, FRENCH_COMMON, Persona

# sentence starts that are ordinary words, lower-cased after an opener like "Honestly,"
_COMMON_STARTS = frozenset({"The", "Our", "Every", "This", "A", "Lower", "Public", "Clean", "Common", "Dental",
                            "Housing", "Renters", "Zoning", "Non-market", "Co-ops", "First-time", "Workers",
                            "Nurses", "Solidarity", "Minimum", "Steady", "Axing", "Supply", "Vote", "Pharmacare"})


class SpannedText:
    """Builds a text from parts, keeping the character spans of planted PII."""

    def __init__(self, lowercase: bool = False) -> None:
        self.parts: list[str] = []
        self.spans: list[tuple[str, int, int, str]] = []
        self.lowercase = lowercase
        self._len = 0

    def add(self, text: str, pii: tuple[str, str] | None = None) -> None:
        """Append ``text``; with ``pii=(type, value)``, ``value`` occurs in ``text`` and is recorded.

        A lower-case persona writes its own words in lower case, never a planted value:
        lowering would break checksums and change what was planted.
        """
        if not text:
            return
        if self.parts:
            self.parts.append(" ")
            self._len += 1
        if pii is not None:
            kind, value = pii
            at = text.index(value)
            before, after = text[:at], text[at + len(value) :]
            if self.lowercase:
                before, after = before.lower(), after.lower()
            text = before + value + after
            self.spans.append((kind, self._len + len(before), self._len + len(before) + len(value), value))
        elif self.lowercase:
            text = text.lower()
        self.parts.append(text)
        self._len += len(text)

    def build(self) -> tuple[str, list[tuple[str, int, int, str]]]:
        return "".join(self.parts), list(self.spans)


def _sentence(rng: random.Random, p: Persona) -> str:
    subject = rng.choice(p.subjects)
    s = f"{subject} {rng.choice(p.verbs)} {rng.choice(p.objects)}."
    if rng.random() < 0.3:
        opener = rng.choice(p.openers)
        if opener[-1] not in ".:!?" and subject.split()[0] in _COMMON_STARTS:
            s = s[0].lower() + s[1:]
        s = f"{opener} {s}"
    if rng.random() < p.shout_rate:
        s = s.upper()
    return s

def compose(rng: random.Random, p: Persona, pii_rate: float, lead: str | None = None, mention: str | None = None
            ) -> tuple[str, list[tuple[str, int, int, str]], list[str] | None]:
    """A text in persona ``p``'s voice (a share in French), with its planted PII spans and its ``langs``."""
    out = SpannedText(lowercase=p.lowercase)
    lang: list[str] | None = ["en"]
    if mention is not None:
        out.add(f"@{mention}", ("USERNAME", mention))
    if lead:
        out.add(lead)
    french = rng.random() < p.french_rate
    if french:
        lang = ["fr"]
        pool = p.french + FRENCH_COMMON if p.french else FRENCH_COMMON
        for _ in range(rng.randint(*p.sentences)):
            out.add(rng.choice(pool))
    else:
        n = rng.randint(*p.sentences)
        for _ in range(n):
            out.add(_sentence(rng, p))
            if rng.random() < p.fact_rate / n:
                out.add(rng.choice(FACTS))
        if rng.random() < 0.35:
            out.add(rng.choice(p.closers))
    if rng.random() < p.link_rate:
        value = pii_gen.url(rng)
        out.add(rng.choice(pii_gen.CONTEXTS["URL"]).replace("{v}", value), ("URL", value))
    if rng.random() < pii_rate:
        kind = rng.choice(pii_gen.PII_TYPES)
        value = pii_gen.GENERATORS[kind](rng)
        out.add(rng.choice(pii_gen.CONTEXTS[kind]).replace("{v}", value), (kind, value))
    if rng.random() < p.emoji_rate:
        out.add("".join(rng.choice(p.emoji) for _ in range(rng.randint(1, 3))))
    if rng.random() < p.hashtag_rate:
        out.add(" ".join(rng.sample(p.hashtags, k=min(len(p.hashtags), rng.randint(1, 3)))))
    text, spans = out.build()
    if not french:
        r = rng.random()
        if r < 0.03:
            lang = None
        elif r < 0.05:
            lang = ["en", "fr"]
    return text, spans, lang
