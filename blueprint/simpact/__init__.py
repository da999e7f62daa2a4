"""SIMPACT, the pipeline: raw Bluesky records -> a privacy-preserving persona dataset directory.

Stages, one module (or package) each, in order: :mod:`.ingest` -> :mod:`.threads` ->
:mod:`.embed` -> :mod:`.cluster` -> :mod:`.export` (the privacy transforms of
:mod:`.privacy`, laid out by :mod:`.layout`, the card of :mod:`.card`, the persona report
of :mod:`.report`). :mod:`.pipeline` runs them (:func:`~blueprint.simpact.pipeline.build`),
with fingerprints and manifests for resuming; :mod:`.config` holds every setting;
:mod:`.engine` says where the work runs (here, or on Ray: :mod:`.ray_engine`);
:mod:`.audit` checks a built dataset.

The pipeline stands on the shared foundations (:mod:`blueprint.embedding`,
:mod:`blueprint.pii`, :mod:`blueprint.atproto`, :mod:`blueprint.data`); nothing outside
the command line, the demo and the benchmarks imports it (ARCHITECTURE.md).
"""
