"""``blueprint synth``: a synthetic Jetstream corpus with latent personas, planted PII and malformed lines."""

from __future__ import annotations

import argparse
from pathlib import Path

from blueprint.cli._args import option
from blueprint.synth import SynthConfig, synthesize


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("synth", help="write a synthetic Jetstream corpus with personas and planted PII")
    p.add_argument("--out", required=True, type=Path,
                   help="the folder to write the corpus to (bluesky-YYYY-MM/DD/HH/ files and _meta/)")
    option(p, "--users", type=int, source=SynthConfig, help="synthetic users (default: %(default)s)")
    option(p, "--seed", type=int, source=SynthConfig, help="random seed (default: %(default)s)")
    option(p, "--personas", type=int, source=SynthConfig, help="latent personas (default: all %(default)s)")
    option(p, "--events-per-user", type=float, source=SynthConfig, help="mean events per user (default: %(default)s)")
    option(p, "--pii-rate", type=float, source=SynthConfig,
           help="share of texts with planted PII (default %(default)s)")
    option(p, "--corrupt-rate", type=float, source=SynthConfig,
           help="share of lines followed by a malformed line (default %(default)s)")
    option(p, "--days", type=float, source=SynthConfig, help="days the corpus spans (default: %(default)s)")
    option(p, "--compress", choices=("gz", "zst"), source=SynthConfig, help="compress each hourly file with gzip "
                                                                            "or zstd (default: not compressed)")
    p.add_argument("--force", action="store_true", help="replace an existing output folder")


def run(a: argparse.Namespace) -> None:
    cfg = SynthConfig(users=a.users, seed=a.seed, personas=a.personas, events_per_user=a.events_per_user,
                      pii_rate=a.pii_rate, corrupt_rate=a.corrupt_rate, days=a.days, compress=a.compress)
    r = synthesize(a.out, cfg, force=a.force)
    c = r.counts
    print(f"{a.out}: {c['lines']} lines in {len(r.files)} files, {c['users']} users; "
          f"planted PII spans {sum(c['pii'].values())}; malformed lines {sum(c['corrupt'].values())}")
