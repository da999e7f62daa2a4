"""A synthetic Jetstream v1 corpus with latent personas and planted PII.

``blueprint synth`` writes a directory in the paper's firehose layout
(``bluesky-YYYY-MM/DD/HH/jetstream.jsonl``) whose lines have the same keys and shapes
as real Jetstream v1 commits: ``did``, ``time_us``, ``kind`` and
``commit.{rev, operation, collection, rkey, record, cid}``, with strong refs
(``uri`` + ``cid``) for replies, quotes, likes and reposts.

Users belong to latent personas (:mod:`blueprint.synth.personas`). Each persona has
its own mix of all 13 actions and its own vocabulary and style, so the persona
stage can be checked against the truth in ``_meta/users.jsonl``. A share of texts
carries planted PII; ``_meta/planted_pii.jsonl`` gives every PII span present in
every text, with its type, so scrubbing can be scored for recall and precision.
``corrupt_rate`` mixes in malformed lines, listed in ``_meta/corrupt_lines.jsonl``.

The output is a pure function of the config: same seed, same bytes.
Files and folders whose names start with ``_`` or ``.`` are metadata; the ingest
stage skips them when it walks a directory.
"""

from blueprint.synth.config import SynthConfig, SynthResult
from blueprint.synth.writing import synthesize

__all__ = ["SynthConfig", "SynthResult", "synthesize"]
