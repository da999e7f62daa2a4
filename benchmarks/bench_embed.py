"""The embedding stage against bare ``SentenceTransformer.encode`` on the same texts.

    python benchmarks/bench_embed.py [--texts 3000] [--repeats 3]

Texts are synthetic posts of mixed lengths. Both sides use the packaged default model
(all-MiniLM-L6-v2), max length 128, batch size 64, normalised vectors, on the CPU.
Prints medians of interleaved runs and the throughput ratio (stage / SentenceTransformer):
- the stage cold (no cache), with and without length-sorted batches;
- the stage warm (every text already in the on-disk cache: a rebuild).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import interleaved, median, print_rates, synthetic_texts  # noqa: E402

from blueprint.simpact.embed import EmbeddingCache, Encoder, embed_texts  # noqa: E402


def texts(n: int, root: Path) -> list[str]:
    """Synthetic posts of mixed lengths, in a random order."""
    out = synthetic_texts(root, 10 * n, users=max(20, n // 8), seed=3, days=1.0)
    rng = np.random.default_rng(0)
    return [out[i] for i in rng.permutation(len(out))[:n]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--texts", type=int, default=3000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    from sentence_transformers import SentenceTransformer

    with tempfile.TemporaryDirectory(prefix="bench-embed-") as tmp:
        root = Path(tmp)
        data = texts(args.texts, root)
        lengths = [len(t) for t in data]
        print(f"{len(data)} texts, {np.mean(lengths):.0f} characters on average (min {min(lengths)}, max {max(lengths)})")
        enc = Encoder("default", batch_size=64, max_length=128)
        unsorted = Encoder("default", batch_size=64, max_length=128, sort_by_length=False)
        st = SentenceTransformer(str(enc.model.path), device="cpu")
        st.max_seq_length = 128
        warm = EmbeddingCache(root / "cache", enc.fingerprint)
        embed_texts(data, enc, warm)  # fill the cache; also loads the model once

        def st_encode():
            return st.encode(data, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)

        check = np.abs(st_encode() - embed_texts(data, enc)[0]).max()
        times = interleaved({
            "SentenceTransformer.encode": st_encode,
            "stage, cold": lambda: embed_texts(data, enc),
            "stage, cold, unsorted": lambda: embed_texts(data, unsorted),
            "stage, warm cache": lambda: embed_texts(data, enc, EmbeddingCache(root / "cache", enc.fingerprint)),
        }, args.repeats)
        base = median(times["SentenceTransformer.encode"])
        print(f"largest difference from SentenceTransformer's vectors: {check:.2e}\n")
        print_rates(times, len(data), "texts", base, "ratio")


if __name__ == "__main__":
    main()
