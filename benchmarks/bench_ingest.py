"""Ingest throughput and memory against bare ``orjson.loads`` of the same lines.

    python benchmarks/bench_ingest.py [--events 1000000] [--repeats 3]

Prints, for a synthetic Jetstream file of N events:
- the bare rate: read every line and ``orjson.loads`` it (the floor of the work);
- the per-line work alone: typed decoding, validation and action derivation;
- the whole stage (that, plus Arrow conversion and the Parquet parts) with 1 and 2
  worker processes; all as medians of interleaved runs, with the ratio to the bare rate;
- peak RSS of ingest in a fresh process (and its workers) for N and 4N events;
- the JSON readers made for bulk loading, as candidates for a fast path over valid
  lines: polars' ``read_ndjson``, DuckDB's ``read_json`` (one thread, the commit kept as
  JSON) and pyarrow's ``read_json``; each parses the whole file into columns, before any
  validation or action derivation, so it is an upper bound on what a fast path gains;
- such a fast path built on DuckDB with the type checks that exactness needs
  (ingest_duckdb.py), on the same lines, checked row for row against the typed decoder.
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import sys
import tempfile
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, interleaved, median, parse_args, print_rates, versus  # noqa: E402

from blueprint.simpact.ingest import IngestConfig, ingest, read_jetstream  # noqa: E402
from blueprint.synth import SynthConfig, synthesize  # noqa: E402

# VmHWM, not ru_maxrss, for the process itself: Linux carries ru_maxrss over exec from the
# parent, which here is the benchmark holding the whole corpus in memory.
_MEMORY_CODE = """
import json, resource, sys
from blueprint.simpact.ingest import IngestConfig, ingest
r = ingest([sys.argv[1]], sys.argv[2], IngestConfig(workers=int(sys.argv[3])))
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"events": r.totals()["events"], "own_mb": hwm / 1024, "workers_mb": kids / 1024}))
"""


def corpus(root: Path, events: int) -> Path:
    """One Jetstream file of about ``events`` lines from the synthetic generator."""
    users = max(2, events // 30)
    raw = root / "raw"
    # one hour of events, so they land in one file, as a firehose dump would
    synthesize(raw, SynthConfig(users=users, seed=1, days=0.99 / 24))
    files = sorted(raw.rglob("jetstream*.jsonl"))
    if len(files) == 1:
        return files[0]
    out = root / "events.jsonl"
    with open(out, "wb") as fh:
        for f in files:
            fh.write(f.read_bytes())
    return out


def bare(path: Path) -> int:
    n = 0
    with open(path, "rb", buffering=1 << 20) as fh:
        for line in fh:
            orjson.loads(line)
            n += 1
    return n


def readers(path: Path) -> dict:
    """The bulk JSON readers that can read this file at all (pyarrow's cannot: see the message)."""
    out = {}
    try:
        import polars as pl

        out["polars read_ndjson"] = lambda: pl.read_ndjson(path)
    except ImportError:
        print("polars is not installed: skipped")
    try:
        import duckdb

        def duck() -> None:
            con = duckdb.connect()
            con.execute("SET threads = 1")
            con.sql(f"SELECT * FROM read_json('{path}', format = 'newline_delimited', columns = "
                    "{did: 'VARCHAR', time_us: 'BIGINT', kind: 'VARCHAR', commit: 'JSON'})").to_arrow_table()
            con.close()

        out["duckdb read_json, 1 thread"] = duck
        out["duckdb fast path, exact checks"] = lambda: duckdb_path(path)
        duckdb_path(path, check=True)
    except ImportError:
        print("duckdb is not installed: skipped")
    import pyarrow.json as pj

    try:
        pj.read_json(path)
        out["pyarrow read_json"] = lambda: pj.read_json(path)
    except Exception as exc:  # noqa: BLE001 - report why, and go on
        print(f"pyarrow read_json cannot read Jetstream: {str(exc)[:120]}")
    return out


def duckdb_path(path: Path, check: bool = False) -> None:
    """Every line through the DuckDB fast path, in blocks; with ``check``, its rows against the typed decoder's."""
    from ingest_duckdb import FastPath

    from blueprint.simpact.ingest import decode_jetstream

    cols = ["did", "time_us", "collection", "operation", "rkey", "action", "text", "langs", "reply_parent",
            "reply_root", "subject_uri", "subject_did"]
    fast = FastPath()
    lines = path.read_bytes().splitlines()
    for start in range(0, len(lines), 16384):
        block = lines[start : start + 16384]
        table, _ = fast.rows(block)
        if check:
            for i, row in zip(table["i"].to_pylist(), table.select(cols).to_pylist()):
                want = list(decode_jetstream(block[i]))
                want[6] = want[6].decode() if isinstance(want[6], bytes) else want[6]
                assert [row[c] for c in cols] == want, block[i][:200]
    fast.close()


def memory(path: Path, work: Path, workers: int) -> dict:
    import subprocess

    out = work / f"mem-{workers}"
    shutil.rmtree(out, ignore_errors=True)
    proc = subprocess.run([sys.executable, "-c", _MEMORY_CODE, str(path), str(out), str(workers)],
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-memory", action="store_true")
    args = parse_args(ap, quick=dict(events=20_000, repeats=1))
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        root = Path(tmp)
        path = corpus(root, args.events)
        lines = bare(path)
        size_mb = path.stat().st_size / 1e6
        print(f"corpus: {lines:,} lines, {size_mb:,.0f} MB ({path.name})")

        def run(workers: int):
            out = root / f"out-{workers}"

            def fresh() -> None:  # from scratch every time: no part may be reused
                shutil.rmtree(out, ignore_errors=True)
                ingest([path], out, IngestConfig(workers=workers))

            return fresh

        def decode_only() -> None:  # the per-line work: typed decoding, validation, action derivation
            gc.disable()  # as the stage does
            try:
                for _ in read_jetstream(path):
                    pass
            finally:
                gc.enable()

        contenders = {"bare orjson.loads": lambda: bare(path), "decode + actions": decode_only,
                      "ingest, 1 worker": run(1), "ingest, 2 workers": run(2)}
        contenders.update(readers(path))
        times = interleaved(contenders, args.repeats)
        base = median(times["bare orjson.loads"])
        print()
        print_rates(times, lines, "lines", base, "ratio to bare", width=24)
        rows = [versus(f"ingest {lines:,} lines: {name} vs bare orjson.loads", lines / median(ts), lines / base,
                       "lines/s", at_least=0.5 if name == "ingest, 1 worker" else None)
                for name, ts in times.items() if name != "bare orjson.loads"]

        if not args.skip_memory:
            print("\npeak RSS of a fresh ingest process (MB); workers are separate processes")
            big = root / "events-x4.jsonl"
            with open(big, "wb") as fh:
                for _ in range(4):
                    with open(path, "rb") as src:
                        shutil.copyfileobj(src, fh, 1 << 22)
            peaks = {}
            for label, p in ((f"{lines:,} lines", path), (f"{4 * lines:,} lines", big)):
                for workers in (1, 2):
                    m = peaks[p, workers] = memory(p, root, workers)
                    print(f"  {label:>18}, {workers} worker(s): main {m['own_mb']:6.0f}, "
                          f"largest worker {m['workers_mb']:6.0f}")
            for workers in (1, 2):
                rows.append(versus(f"ingest peak RSS (main), {workers} worker(s): {4 * lines:,} vs {lines:,} lines",
                                   peaks[big, workers]["own_mb"], peaks[path, workers]["own_mb"], "MB",
                                   at_most=1.25))
        emit(rows, args)


if __name__ == "__main__":
    main()
