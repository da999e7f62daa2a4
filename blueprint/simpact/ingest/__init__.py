"""Ingest: raw Bluesky records -> one normalised, typed event table.

Readers stream their input with bounded memory and turn every record into the
same row shape (:data:`EVENT_SCHEMA`), written as Parquet in chunks, one part per
input file. Only records that carry one of the 13 actions become rows.

Every input line is accounted for in the report, in exactly one place:
- ``events``: a row was written, counted by action;
- ``no_action``: a valid line that carries no action (identity and account events,
  other collections, unmapped operations), counted by reason;
- ``quarantined``: a bad line (invalid JSON, truncated, invalid UTF-8, a missing or
  mistyped field), counted by reason and written with its file and line number to
  ``quarantine.jsonl``. Bad input never stops a run.

Decoding is typed (msgspec structs that skip unused fields): it is faster than
generic JSON parsing and names the offending field in its errors.

The package has one module per reader (:mod:`.jetstream`, :mod:`.car`,
:mod:`.post_thread`), the shared record decoding (:mod:`.records`), input discovery
and the segment planner (:mod:`.segments`), and the stage (:mod:`.stage`).
"""

from __future__ import annotations

from blueprint.simpact.ingest.car import read_car
from blueprint.simpact.ingest.jetstream import decode_jetstream, read_jetstream
from blueprint.simpact.ingest.post_thread import read_post_thread
from blueprint.simpact.ingest.records import (
                                               EVENT_SCHEMA,
                                               PART_VERSION,
                                               BadLine,
                                               record_row,
)
from blueprint.simpact.ingest.segments import (
                                               FORMAT_SUFFIXES,
                                               JETSTREAM_SUFFIXES,
                                               InputFile,
                                               Segment,
                                               discover,
                                               file_digest,
                                               open_lines,
                                               scan,
)
from blueprint.simpact.ingest.stage import (
                                               FileReport,
                                               IngestConfig,
                                               IngestReport,
                                               ingest,
                                               ingest_segment,
                                               plan,
                                               read_events,
                                               read_segments,
                                               zstd_error,
)

__all__ = ["EVENT_SCHEMA", "FORMAT_SUFFIXES", "JETSTREAM_SUFFIXES", "PART_VERSION", "BadLine", "FileReport",
           "IngestConfig", "IngestReport", "InputFile", "Segment", "decode_jetstream", "discover", "file_digest",
           "ingest", "ingest_segment", "open_lines", "plan", "read_car", "read_events", "read_jetstream",
           "read_post_thread", "read_segments", "record_row", "scan", "zstd_error"]
