"""Writing the corpus: the firehose layout (``bluesky-YYYY-MM/DD/HH/jetstream.jsonl``) and its ``_meta``.

The directory appears whole or not at all: everything is written to a temporary
sibling and renamed at the end.
"""

from __future__ import annotations

import gzip
import logging
import random
from collections import Counter
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import orjson

from blueprint._io import atomic_dir, write_json, write_jsonl
from blueprint.actions import ACTIONS
from blueprint.errors import BadInputError
from blueprint.synth.config import SynthConfig, SynthResult
from blueprint.synth.corruption import corrupt
from blueprint.synth.world import Line, World

log = logging.getLogger(__name__)

META_DIR = "_meta"
FORMAT_VERSION = 2  # bump when the same config would give other bytes
_HOUR_US = 3_600_000_000


def _open_out(path: Path, compress: str | None):
    if compress == "gz":
        return gzip.GzipFile(filename="", mode="wb", fileobj=open(path, "wb"), mtime=0)
    if compress == "zst":
        import zstandard

        return zstandard.ZstdCompressor(level=3).stream_writer(open(path, "wb"), closefd=True)
    return open(path, "wb")


def synthesize(out_dir: str | Path, config: SynthConfig | None = None, *, force: bool = False) -> SynthResult:
    """Write a synthetic corpus to ``out_dir`` and return what it holds.

    The directory appears whole or not at all: everything is written to a
    temporary sibling and renamed at the end. An existing ``out_dir`` made with
    the same config is reused as is; any other existing ``out_dir`` is an error
    unless ``force`` is set.
    """
    cfg = config or SynthConfig()
    out_dir = Path(out_dir)
    manifest_path = out_dir / META_DIR / "synth.json"
    if out_dir.exists():
        if manifest_path.is_file():
            old = orjson.loads(manifest_path.read_bytes())
            if old.get("config") == asdict(cfg) and old.get("format_version") == FORMAT_VERSION:
                log.info("synth: %s already holds this corpus; reusing it", out_dir)
                return SynthResult(out_dir, old["files"], old["counts"])
        if not force and any(out_dir.iterdir()):
            raise BadInputError("exists and holds something else; pass --force to replace it", path=out_dir)

    world = World(cfg)
    world.run()
    lines = _shuffle_locally(world)
    crng = random.Random(cfg.seed ^ 0x5EED)

    with atomic_dir(out_dir) as tmp:
        files, pii_rows, corrupt_rows, line_count = _write_lines(tmp, lines, cfg, crng, world)
        users_rows = [{"did": u.did, "handle": u.handle, "persona": world.personas[u.persona].name}
                      for u in world.users]
        counts = {
            "lines": line_count,
            "valid_events": len(lines),
            "actions": {a: world.action_counts.get(a, 0) for a in ACTIONS},
            "personas": dict(sorted(Counter(r["persona"] for r in users_rows).items())),
            "pii": dict(sorted(Counter(r["type"] for r in pii_rows).items())),
            "corrupt": dict(sorted(Counter(r["kind"] for r in corrupt_rows).items())),
            "users": len(users_rows),
        }
        meta = tmp / META_DIR
        write_jsonl(meta / "planted_pii.jsonl", pii_rows)
        write_jsonl(meta / "corrupt_lines.jsonl", corrupt_rows)
        write_jsonl(meta / "users.jsonl", users_rows)
        write_json(meta / "synth.json", {"config": asdict(cfg), "format_version": FORMAT_VERSION,
                                         "files": files, "counts": counts})
    log.info("synth: %d lines in %d files, %d users", line_count, len(files), len(users_rows))
    return SynthResult(out_dir, files, counts)


def _shuffle_locally(world: World) -> list[Line]:
    """Jetstream delivers events nearly, not exactly, in time order: swap neighbours a little."""
    rng = random.Random(world.cfg.seed ^ 0xA5A5)
    lines = list(world.lines)
    for i in range(len(lines) - 1):
        if rng.random() < 0.05:
            lines[i], lines[i + 1] = lines[i + 1], lines[i]
    return lines


def _write_lines(root: Path, lines: list[Line], cfg: SynthConfig, rng: random.Random, world: World):
    suffix = {None: "", "gz": ".gz", "zst": ".zst"}[cfg.compress]
    files: list[str] = []
    pii_rows: list[dict] = []
    corrupt_rows: list[dict] = []
    total = 0
    current_hour = None
    fh = None
    lineno = 0
    rel = ""
    try:
        for line in lines:
            hour = line.time_us // _HOUR_US
            if hour != current_hour:
                if fh is not None:
                    fh.close()
                stamp = datetime.fromtimestamp(hour * 3600, tz=UTC)
                rel = f"bluesky-{stamp:%Y-%m}/{stamp:%d}/{stamp:%H}/jetstream.jsonl{suffix}"
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                # a later line may fall back into an hour already written: start a second file
                while rel in files:
                    rel = rel.replace("jetstream", f"jetstream-{len(files)}", 1)
                files.append(rel)
                fh = _open_out(root / rel, cfg.compress)
                current_hour, lineno = hour, 0
            batch = [line]
            if cfg.corrupt_rate and rng.random() < cfg.corrupt_rate:
                batch += corrupt(rng, line, world)
            assert fh is not None  # opened for the line's hour above
            for item in batch:
                lineno += 1
                total += 1
                fh.write((item.raw if item.raw is not None else orjson.dumps(item.event)) + b"\n")
                if item.corruption is not None:
                    corrupt_rows.append({"file": rel, "line": lineno, "kind": item.corruption})
                for kind, start, end, value in item.spans:
                    pii_rows.append({"file": rel, "line": lineno, "uri": item.uri, "type": kind,
                                     "start": start, "end": end, "value": value})
    finally:
        if fh is not None:
            fh.close()
    return files, pii_rows, corrupt_rows, total

