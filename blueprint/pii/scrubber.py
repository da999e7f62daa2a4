"""The scrubber: every recognizer over the normalised view, overlaps resolved, spans replaced by ``<TYPE>``."""

from __future__ import annotations

from collections.abc import Sequence

from blueprint.pii.recognizers import (
    PII_TYPES,
    Span,
    find_word_email,
    recognizers,
    resolve_overlaps,
)
from blueprint.pii.view import identity, normalise, refang
from blueprint.validation import check_choice


class Scrubber:
    """Finds PII spans and replaces them with ``<TYPE>`` tags.

    The recognizers read a normalised view of the text (:func:`normalise`, then
    :func:`refang`), so zero-width characters, fullwidth forms, no-break spaces,
    defanged links and bracketed ``[at]``/``[dot]`` hide nothing; e-mail addresses
    written with the words "at" and "dot" are found too. Every match is mapped back to
    the exact span of the original text, which the replacement removes whole.
    """

    def __init__(self, types: Sequence[str] | None = None, *, region: str = "CA", normalise: bool = True) -> None:
        """``normalise=False`` reads the raw text only, as the scrubber did before the normalised view (kept
        as the reference the scrub benchmark measures against)."""
        table = recognizers(region)
        types = list(types) if types is not None else list(PII_TYPES)
        for t in types:
            check_choice(t, "types", PII_TYPES)
        self.types = tuple(types)
        self.region = region
        self._recognizers = [table[t] for t in self.types]
        self._word_email = "EMAIL_ADDRESS" in self.types and normalise
        self._normalise = normalise

    def __reduce__(self):  # the recognizers are closures: rebuild them in the receiving process
        return (_scrubber, (self.types, self.region, self._normalise))

    def spans(self, text: str) -> list[Span]:
        """Every PII span in ``text`` (original indices), non-overlapping, in order."""
        if not text:
            return []
        view = refang(normalise(text)) if self._normalise else identity(text)
        t = view.text
        found = [Span(a, b, r.type) for r in self._recognizers for a, b in r.find(t) if b > a]
        if self._word_email:
            found += [Span(a, b, "EMAIL_ADDRESS") for a, b in find_word_email(t)]
        kept = resolve_overlaps(found)
        if view.start is None:
            return kept
        return resolve_overlaps(Span(*view.original(s.start, s.end), s.type) for s in kept)

    def scrub(self, text: str | None) -> str | None:
        """``text`` with every PII span replaced by its ``<TYPE>`` tag."""
        if not text:
            return text
        return replace_spans(text, self.spans(text))


def replace_spans(text: str, spans: Sequence[Span]) -> str:
    out, last = [], 0
    for s in spans:
        out.append(text[last : s.start])
        out.append(f"<{s.type}>")
        last = s.end
    out.append(text[last:])
    return "".join(out)


def _scrubber(types: Sequence[str], region: str, normalise: bool) -> Scrubber:
    return Scrubber(types, region=region, normalise=normalise)

