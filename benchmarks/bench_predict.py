"""``blueprint predict``'s transformers engine against one prompt at a time, plainly.

The engine batches prompts of similar length with left padding and computes the shared
system prompt's keys and values once; the reference generates for one prompt at a time.

    python benchmarks/bench_predict.py [--rows 256] [--batch-size 16] [--max-new-tokens 32] [--model PATH]

Both runs use the same model, prompts and greedy settings. Prints rows per second (median
of interleaved runs), the speed-up (target: at least 3x) and the share of rows whose
batched answer equals the one-at-a-time answer (target: at least 99%; left padding can
change float rounding). Without ``--model``, a random Llama-style model (4 layers,
hidden 256) is made on the spot with a tokenizer trained on the prompts.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import alone, emit, interleaved, median, parse_args, print_rates, synthetic_texts, versus  # noqa: E402

from blueprint.actions import ACTIONS  # noqa: E402
from blueprint.models.predict import GenerationConfig, TransformersEngine  # noqa: E402
from blueprint.models.tiny import make_tiny_causal_lm  # noqa: E402
from blueprint.task import SYSTEM_PROMPT, to_messages  # noqa: E402

SPEEDUP_TARGET = 3.0
AGREEMENT_TARGET = 0.99


def examples(texts: list[str], n: int, seed: int = 0) -> list[dict]:
    """Threads of 1 to 5 messages (the paper's depth cap) from synthetic texts; the last one is the answer."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        length = rng.choice([1, 2, 2, 2, 3, 4, 5])
        users = [f"u{rng.randrange(4)}" for _ in range(length)]
        thread = [{"user_id": u, "text": rng.choice(texts), "relative_integer_time": t, "actions": None}
                  for t, u in enumerate(users)]
        out.append({"id": str(i), "thread": thread, "cluster_id": 0, "action": ACTIONS.index("like")})
    return out


def run(engine: TransformersEngine, prompts) -> dict[int, str]:
    answers: dict[int, str] = {}
    engine.generate(prompts, lambda i, a, e: answers.__setitem__(i, a))
    return answers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--model", default=None, help="a causal LM folder or Hub id (default: a random one made here)")
    args = parse_args(ap, quick=dict(rows=32, max_new_tokens=8, repeats=1))
    with tempfile.TemporaryDirectory(prefix="bench-predict-") as tmp:
        texts = synthetic_texts(Path(tmp), 5000, users=300, seed=4, days=2.0)
        rows = examples(texts, args.rows)
        model = args.model or str(make_tiny_causal_lm(Path(tmp) / "lm", [SYSTEM_PROMPT] + texts, vocab_size=2000,
                                                      hidden=256, layers=4))
        prompts = [to_messages(r) for r in rows]
        gen = dict(max_new_tokens=args.max_new_tokens)
        batched = TransformersEngine(model, generation=GenerationConfig(batch_size=args.batch_size, **gen))
        single = TransformersEngine(model, generation=GenerationConfig(batch_size=1, **gen), sort_by_length=False,
                                    share_prefix=False)
        single._loaded = batched.load()  # one model in memory, the same weights for both
        results: dict[str, dict[int, str]] = {}
        contenders = {f"engine (batch {args.batch_size}, shared prefix)": batched, "one at a time": single}
        times = interleaved({name: (lambda e=e, name=name: results.__setitem__(name, run(e, prompts)))
                             for name, e in contenders.items()}, args.repeats)
        names = list(contenders)
        base = median(times[names[1]])
        print(f"predict, transformers engine: {args.rows} rows, greedy, {args.max_new_tokens} new tokens, "
              f"model {'made here (4 layers, hidden 256)' if not args.model else args.model}")
        print_rates(times, args.rows, "rows", base, "speed-up")
        same = sum(results[names[0]][i] == results[names[1]][i] for i in range(args.rows)) / args.rows
        speedup = base / median(times[names[0]])
        print(f"speed-up {speedup:.2f}x (target {SPEEDUP_TARGET:.0f}x): "
              f"{'PASS' if speedup >= SPEEDUP_TARGET else 'FAIL'}")
        print(f"same greedy answer {same:.1%} of rows (target {AGREEMENT_TARGET:.0%}): "
              f"{'PASS' if same >= AGREEMENT_TARGET else 'FAIL'}")
        emit([versus(f"predict {args.rows} rows: batched engine vs one prompt at a time",
                     args.rows / median(times[names[0]]), args.rows / base, "rows/s", at_least=SPEEDUP_TARGET),
              alone("predict: same greedy answer as one at a time", same, "share", at_least=AGREEMENT_TARGET)], args)


if __name__ == "__main__":
    main()
