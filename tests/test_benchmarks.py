"""``python -m benchmarks``: one table and one JSON report from every benchmark's headline rows."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from _common import Row, alone, format_table, versus  # noqa: E402


def test_rows_state_their_target_on_the_ratio() -> None:
    fast = versus("x", 300.0, 100.0, "rows/s", at_least=2.0)  # a rate: 3x the reference
    assert (fast.ratio, fast.passed, fast.target) == (3.0, True, "ratio >= 2")
    slow = versus("y", 3.0, 2.0, "s", at_most=1.5)  # a time: 1.5x the reference's, at the limit
    assert (slow.ratio, slow.passed) == (1.5, True)
    assert versus("z", 4.0, 2.0, "s", at_most=1.5).passed is False
    assert versus("r", 1.0, 2.0, "s").passed is None  # reported, no target
    floor = versus("c", 30_000.0, 90_000.0, "events/s", at_least=20_000, on="ours")  # absolute, reference for scale
    assert (floor.ratio, floor.passed, floor.target) == (30_000 / 90_000, True, "events/s >= 20000")
    mem = alone("m", 5000.0, "MB", at_most=4096)
    assert (mem.reference, mem.ratio, mem.passed, mem.target) == (None, None, False, "MB <= 4096")
    table = format_table([fast, mem])
    assert "FAIL" in table.splitlines()[-1] and "pass" in table.splitlines()[-2]
    md = format_table([fast], markdown=True).splitlines()
    assert md[0] == "| benchmark | ours | reference | ratio | target | result |"
    assert md[2] == "| x | 300 rows/s | 100 rows/s | 3.00 | ratio >= 2 | pass |"


def test_runner_writes_one_json_row_per_headline(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--only", "scrub", "--json", str(out),
                           "--log-dir", str(tmp_path / "logs")], cwd=REPO, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(out.read_text())
    assert rows and all({"name", "ours", "reference", "ratio", "target", "passed"} <= set(r) for r in rows)
    names = [r["name"] for r in rows]
    assert any(n.startswith("scrub pii_evasions.txt: recall") for n in names)
    recall = next(r for r in rows if r["name"].startswith("scrub pii_posts.txt: recall"))
    assert recall["passed"] is (recall["ours"] >= 0.99)
    assert "benchmark" in proc.stdout and "result" in proc.stdout  # the table's header
    assert (tmp_path / "logs" / "scrub.log").is_file()
    assert [Row(**r).name for r in rows] == names


def test_runner_reports_a_crash_as_a_failed_row(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--only", "nosuch"], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode != 0 and "unknown benchmark" in proc.stderr
    bad = tmp_path / "bench_broken.py"
    bad.write_text("raise SystemExit('the corpus is missing')\n")
    sys.path.insert(0, str(REPO))
    from benchmarks.__main__ import run_one

    rows, _, ok = run_one("broken", bad, [], tmp_path, timeout=60)
    assert not ok and rows[0].passed is False and "the corpus is missing" in rows[0].note
