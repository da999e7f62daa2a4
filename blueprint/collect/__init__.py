"""Collecting raw data: a Jetstream capture, verbatim, rotated by hour, resumable.

``blueprint collect --out RAW_DIR`` subscribes to a Jetstream instance and writes
every event it receives, byte for byte, as one JSON line, into
``RAW_DIR/YYYY-MM/DD/HH/jetstream.jsonl`` by the hour of the event's ``time_us``
(UTC). An hour's file is compressed with zstd (``jetstream.jsonl.zst``) once events
two hours later arrive (a straggler of the previous hour still finds its file open),
and every file when the capture ends. ``blueprint build RAW_DIR`` reads the result.

Filtering by collection and by DID uses Jetstream's own ``wantedCollections`` and
``wantedDids`` parameters. Keyword filtering is left to the build, so the capture
is never lossy.

Reliability:

- the cursor (the ``time_us`` of the last event written, once the file holding it
  is flushed to disk) is kept in ``RAW_DIR/_cursor.json``, written atomically;
- on a dropped connection, and on restart, the collector reconnects with exponential
  backoff and jitter and asks for events from the cursor minus a safety window
  (``window_s``, default 5 s); the events that the window delivers again are
  recognised (a hash of their bytes, kept for the window) and dropped, so the files
  hold each event once. A restart rebuilds those hashes from the files' tails, and
  cuts a line that a kill left half-written;
- Ctrl-C or SIGTERM flushes and closes the open files and writes the cursor;
- a frame that is not a JSON object with an integer ``time_us`` goes to
  ``RAW_DIR/_quarantine.jsonl`` with the reason and an excerpt, never to the data.

Files and folders whose names start with ``_`` are skipped by the build.

Modules: :mod:`.config` (what to capture), :mod:`.files` (hourly files, compression),
:mod:`.collector` (the connection, the cursor, re-delivered events).
"""


from blueprint.collect.collector import Collector, CollectReport, collect
from blueprint.collect.config import CURSOR, FILE, PUBLIC_ENDPOINTS, QUARANTINE, CollectConfig, parse_time, read_dids
from blueprint.collect.files import compress_file, hour_dir

__all__ = ["CURSOR", "FILE", "PUBLIC_ENDPOINTS", "QUARANTINE", "CollectConfig", "CollectReport", "Collector",
           "collect", "compress_file", "hour_dir", "parse_time", "read_dids"]
