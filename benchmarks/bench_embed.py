"""The embedding stage against bare ``SentenceTransformer.encode`` on the same texts.

    python benchmarks/bench_embed.py [--texts 3000] [--repeats 3]

Texts are synthetic posts of mixed lengths. Both sides use the packaged default model
(all-MiniLM-L6-v2), max length 128, batch size 64, normalised vectors, on the CPU.
Prints medians of interleaved runs and the throughput ratio (stage / SentenceTransformer):
- the stage cold (no cache), with and without length-sorted batches;
- the stage warm (every text already in the on-disk cache: a rebuild);
- the ONNX Runtime and OpenVINO backends (``--embed-backend onnx``, ``onnx-int8``, ``openvino``,
  ``openvino-bf16``), with their agreement with the torch vectors: the smallest cosine over every text, and the
  adjusted Rand index between the persona partitions (k = 8 and 25, size_min 10) that
  the torch and the ONNX user vectors give for the synthetic users behind the texts.
  Target: at least 2x SentenceTransformer's throughput, cosine at least 0.999.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import alone, emit, interleaved, median, parse_args, print_rates, synthetic_texts, versus  # noqa: E402

from blueprint.embedding import EmbeddingCache, Encoder, embed_texts  # noqa: E402


def texts(n: int, root: Path) -> list[str]:
    """Synthetic posts of mixed lengths, in a random order."""
    out = synthetic_texts(root, 10 * n, users=max(20, n // 8), seed=3, days=1.0)
    rng = np.random.default_rng(0)
    return [out[i] for i in rng.permutation(len(out))[:n]]


def authored(root: Path) -> tuple[list[str], list[str]]:
    """(author DID, text) of every post in the corpus ``texts`` wrote under ``root``."""
    import orjson

    dids, out = [], []
    for f in sorted((root / "raw").rglob("jetstream*.jsonl")):
        for line in f.read_bytes().splitlines():
            ev = orjson.loads(line)
            rec = ev.get("commit", {}).get("record") or {}
            if isinstance(rec.get("text"), str) and rec["text"]:
                dids.append(ev["did"])
                out.append(rec["text"])
    return dids, out


def agreement(root: Path, backends: dict[str, Encoder], ref: Encoder, limit: int = 4000) -> dict[str, dict]:
    """Per backend: the smallest cosine to torch over the corpus's first ``limit`` posts, and the ARI of the
    persona partitions of their authors."""
    import pyarrow as pa
    from sklearn.metrics import adjusted_rand_score

    from blueprint.simpact.cluster import ClusterConfig, cluster
    from blueprint.simpact.embed import UserMeans

    def user_embeddings(dids: list[str], vectors: np.ndarray) -> tuple[list[str], np.ndarray]:
        """Each author's mean vector, through the embedding stage's own accumulator."""
        users = sorted(set(dids))
        means = UserMeans(users, vectors.shape[1])
        means.add(pa.array(dids), vectors)
        return users, means.means()

    dids, data = authored(root)
    dids, data = dids[:limit], data[:limit]
    base = ref.encode(data)
    _, users_ref = user_embeddings(dids, base)
    out = {}
    for name, enc in backends.items():
        vec = enc.encode(data)
        cos = np.einsum("ij,ij->i", vec, base) / (np.linalg.norm(vec, axis=1) * np.linalg.norm(base, axis=1))
        _, users = user_embeddings(dids, vec)
        ari = {}
        for k in [k for k in (8, 25) if len(users_ref) >= 10 * k]:  # k x size_min must fit the users
            cfg = ClusterConfig(partitions=(k,), size_min=10, seed=0)
            ari[k] = adjusted_rand_score(cluster(users_ref, k, cfg).labels, cluster(users, k, cfg).labels)
        out[name] = {"texts": len(data), "users": len(users), "min_cosine": float(cos.min()),
                     "median_cosine": float(np.median(cos)), "ari": ari}
    # how stable the partition is on its own: the torch vectors clustered with another seed
    out["torch, another k-means seed"] = {"texts": len(data), "users": len(users_ref), "min_cosine": 1.0,
                                          "median_cosine": 1.0, "ari": {
        k: adjusted_rand_score(cluster(users_ref, k, ClusterConfig(partitions=(k,), size_min=10, seed=0)).labels,
                               cluster(users_ref, k, ClusterConfig(partitions=(k,), size_min=10, seed=1)).labels)
        for k in (8, 25) if len(users_ref) >= 10 * k}}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--texts", type=int, default=3000)
    ap.add_argument("--repeats", type=int, default=3)
    args = parse_args(ap, quick=dict(texts=120, repeats=1))
    from sentence_transformers import SentenceTransformer

    with tempfile.TemporaryDirectory(prefix="bench-embed-") as tmp:
        root = Path(tmp)
        data = texts(args.texts, root)
        lengths = [len(t) for t in data]
        print(f"{len(data)} texts, {np.mean(lengths):.0f} characters on average "
              f"(min {min(lengths)}, max {max(lengths)})")
        enc = Encoder("default", batch_size=64, max_length=128)
        unsorted = Encoder("default", batch_size=64, max_length=128, sort_by_length=False)
        st = SentenceTransformer(str(enc.model.path), device="cpu")
        st.max_seq_length = 128
        onnx = Encoder("default", batch_size=64, max_length=128, backend="onnx")
        ov = Encoder("default", batch_size=64, max_length=128, backend="openvino")
        ovbf = Encoder("default", batch_size=64, max_length=128, backend="openvino-bf16")
        int8 = Encoder("default", batch_size=64, max_length=128, backend="onnx-int8")
        warm = EmbeddingCache(root / "cache", enc.fingerprint)
        embed_texts(data, enc, warm)  # fill the cache; also loads the model once
        [e.encode(data[:8]) for e in (onnx, int8, ov, ovbf)]  # export (cached for later runs) and load

        def st_encode():
            return st.encode(data, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)

        check = np.abs(st_encode() - embed_texts(data, enc)[0]).max()
        times = interleaved({
            "SentenceTransformer.encode": st_encode,
            "stage, cold": lambda: embed_texts(data, enc),
            "stage, cold, unsorted": lambda: embed_texts(data, unsorted),
            "stage, warm cache": lambda: embed_texts(data, enc, EmbeddingCache(root / "cache", enc.fingerprint)),
            "stage, cold, onnx": lambda: embed_texts(data, onnx),
            "stage, cold, onnx-int8": lambda: embed_texts(data, int8),
            "stage, cold, openvino": lambda: embed_texts(data, ov),
            "stage, cold, openvino-bf16": lambda: embed_texts(data, ovbf),
        }, args.repeats)
        base = median(times["SentenceTransformer.encode"])
        print(f"largest difference from SentenceTransformer's vectors: {check:.2e}\n")
        print_rates(times, len(data), "texts", base, "ratio")
        print("\nagreement with the torch vectors (the synthetic corpus's first 4000 posts, and their authors):")
        agree = agreement(root, {"onnx": onnx, "onnx-int8": int8, "openvino": ov, "openvino-bf16": ovbf}, enc,
                          limit=min(4000, 20 * args.texts))
        for name, a in agree.items():
            print(f"  {name:28} {a['texts']} texts: min cosine {a['min_cosine']:.5f} (median {a['median_cosine']:.6f});"
                  f" {a['users']} users: ARI " + ", ".join(f"k={k} {v:.3f}" for k, v in a['ari'].items()))
        rate = {name: len(data) / median(ts) for name, ts in times.items()}
        rows = [versus(f"embed {len(data):,} texts: {name} vs SentenceTransformer", rate[name], len(data) / base,
                       "texts/s") for name in times if name != "SentenceTransformer.encode"]
        rows += [alone(f"embed: {name}, smallest cosine to torch", a["min_cosine"], "")
                 for name, a in agree.items() if name in ("onnx", "onnx-int8", "openvino", "openvino-bf16")]
        close = [n for n, a in agree.items() if n in ("onnx", "onnx-int8", "openvino", "openvino-bf16")
                 and a["min_cosine"] >= 0.999]
        if close:
            best = max(close, key=lambda n: rate[f"stage, cold, {n}"])
            rows.append(versus(f"embed: fastest backend within cosine 0.999 ({best}) vs SentenceTransformer",
                               rate[f"stage, cold, {best}"], len(data) / base, "texts/s", at_least=2.0))
        else:
            rows.append(alone("embed: a backend within cosine 0.999 of torch", 0, "backends", at_least=1))
        emit(rows, args)


if __name__ == "__main__":
    main()
