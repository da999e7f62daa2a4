"""PII scrubbing throughput on one core, over synthetic posts with planted PII.

    python benchmarks/bench_scrub.py [--posts 100000]

Prints posts per second (median of interleaved runs) against the 10,000 posts/s target,
and the same for the paper's own scrubbing pattern for handles, the cheapest possible
pass, as a floor to compare with.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import interleaved, print_rates, synthetic_texts  # noqa: E402

from blueprint.simpact.pii import Scrubber  # noqa: E402

TARGET = 10_000
PAPER_HANDLE = re.compile(r"(?<=@)[A-Za-z0-9\-]+\.bsky\.social")


def posts(n: int, root: Path) -> list[str]:
    return synthetic_texts(root, n, users=max(50, n // 10), seed=9, days=3.0, pii_rate=0.1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--posts", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-scrub-") as tmp:
        data = posts(args.posts, Path(tmp))
        scrubber = Scrubber()
        times = interleaved({
            "blueprint Scrubber (9 types)": lambda: [scrubber.scrub(t) for t in data],
            "paper's handle regex only": lambda: [PAPER_HANDLE.sub("<USERNAME>", t) for t in data],
        }, args.repeats)
        print(f"{len(data):,} posts, one process\n")
        # the base is the time the target rate would take, so the ratio is the rate over the target
        print_rates(times, len(data), "posts", len(data) / TARGET, "vs 10k target")


if __name__ == "__main__":
    main()
