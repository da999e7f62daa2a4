"""PII: one recognizer per type, the scrubber that replaces matches by ``<TYPE>`` tags, and its evaluation.

- :mod:`.recognizers`: the recognizers and the types they find;
- :mod:`.view`: the normalised text they read (hidden characters, defanged links);
- :mod:`.scrubber`: :class:`Scrubber`, spans in the original text, their replacement;
- :mod:`.checksums`: Luhn, Base58Check and Bech32, which validate matches and which the
  synthetic corpus plants;
- :mod:`.evaluation`: precision and recall on labelled posts.
"""

from __future__ import annotations

from blueprint.pii.recognizers import (
    PII_TYPES,
    Recognizer,
    Span,
    recognizers,
    resolve_overlaps,
)
from blueprint.pii.scrubber import Scrubber, replace_spans

__all__ = ["PII_TYPES", "Recognizer", "Scrubber", "Span", "recognizers", "replace_spans", "resolve_overlaps"]
