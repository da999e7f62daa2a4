"""``blueprint collect``: capture Jetstream into the hourly files that ``blueprint build`` reads."""

from __future__ import annotations

import argparse
from pathlib import Path

from blueprint.cli._args import option
from blueprint.collect import CollectConfig, collect, parse_time, read_dids


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("collect", help="capture Bluesky from a Jetstream instance into hourly files that build reads",
                       description="Writes every event verbatim into OUT/YYYY-MM/DD/HH/jetstream.jsonl (zstd once the "
                                   "hour is over); resumes from OUT/_cursor.json. Ctrl-C or SIGTERM stops cleanly.")
    p.add_argument("--out", required=True, type=Path, help="the capture folder (RAW_DIR for blueprint build)")
    option(p, "--endpoint", source=CollectConfig,
           help="a Jetstream subscribe URL, ws:// or wss:// (default: %(default)s)")
    option(p, "--collections", nargs="+", metavar="NSID", source=CollectConfig,
           help="collections to ask for (default: the five behind the 13 actions: post, like, repost, follow, "
                "block)")
    p.add_argument("--dids", type=Path, default=None, metavar="FILE",
                   help="only these users (one DID per line) (default: every user)")
    stop = p.add_mutually_exclusive_group()
    option(stop, "--until", default=None, metavar="TIME", field="until_us",
           help="stop at the first event at or after TIME (ISO 8601, or unix microseconds) (default: run until "
                "Ctrl-C)")
    option(stop, "--max-events", type=int, metavar="N", source=CollectConfig,
           help="stop once the capture holds N events (counted over restarts) (default: no limit)")
    option(p, "--window-s", type=float, source=CollectConfig,
           help="a reconnection asks for events from the cursor minus this many seconds (default {default})")
    option(p, "--flush-s", type=float, source=CollectConfig,
           help="flush the files and write the cursor at least this often (default {default} s)")


def run(a: argparse.Namespace) -> int:
    cfg = CollectConfig(endpoint=a.endpoint, collections=tuple(a.collections),
                        dids=read_dids(a.dids) if a.dids else (), until_us=parse_time(a.until) if a.until else None,
                        max_events=a.max_events, window_s=a.window_s, flush_s=a.flush_s)
    r = collect(a.out, cfg, progress=not a.quiet)
    by = ", ".join(f"{k.rsplit('.', 1)[-1]} {v}" for k, v in sorted(r.by_collection.items())) or "none"
    print(f"{a.out}: {r.written} events written ({by}); {r.duplicates} duplicates dropped; "
          f"{sum(r.quarantined.values())} frames quarantined; {r.reconnects} reconnections; "
          f"stopped by {r.stopped or 'signal'}; cursor {r.cursor}")
    return 0
