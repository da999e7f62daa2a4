"""``blueprint finetune``: LoRA fine-tuning on a config's train split, the paper's settings by default."""

from __future__ import annotations

import argparse
from pathlib import Path

from blueprint.cli._args import option
from blueprint.cli._common import dataset_options
from blueprint.models.finetune import FinetuneConfig


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("finetune", help="fine-tune a causal LM on a config's train split (TRL SFTTrainer, LoRA)",
                       description="Supervised fine-tuning with the paper's settings by default: LoRA r=16, "
                                   "alpha=16, dropout 0.1, learning rate 3e-4, 3 epochs, batch 2 with gradient "
                                   "accumulation 16. The output folder is what predict --model takes.")
    p.add_argument("--model", required=True,
                   help="smollm2-135m-instruct (the packaged real model), a .gguf file, a local folder or a Hub id")
    dataset_options(p, split=False)
    p.add_argument("--out", required=True, type=Path, help="the adapter folder (checkpoints in OUT/checkpoints)")
    cfg = FinetuneConfig
    option(p, "--loss", choices=("ce", "focal"), source=cfg, help="ce (cross-entropy, default) or focal (the "
                                                                  "paper's variant)")
    option(p, "--gamma", type=float, source=cfg, help="focal loss exponent (default {default}, as the paper)")
    p.add_argument("--no-lora", action="store_true", help="train every weight instead of a LoRA adapter")
    option(p, "--lora-r", type=int, source=cfg, help="LoRA rank (default: %(default)s)")
    option(p, "--lora-alpha", type=int, source=cfg, help="LoRA alpha (default: %(default)s)")
    option(p, "--lora-dropout", type=float, source=cfg, help="LoRA dropout (default: %(default)s)")
    option(p, "--target-modules", source=cfg,
           help="comma-separated module names, 'all-linear', or auto: q/k/v/o projections (default)")
    option(p, "--learning-rate", type=float, source=cfg, help="peak learning rate (default: %(default)s)")
    option(p, "--epochs", type=float, source=cfg, help="passes over the train split (default: %(default)s)")
    option(p, "--batch-size", type=int, source=cfg, help="rows per device step (default: %(default)s)")
    option(p, "--grad-accum", type=int, source=cfg, help="steps accumulated per optimizer step (default: %(default)s)")
    option(p, "--max-steps", type=int, source=cfg, help="stop after N optimizer steps (a quick run)")
    option(p, "--limit", type=int, source=cfg, help="train on N rows (a seeded sample) (default: every row)")
    option(p, "--eval-limit", type=int, source=cfg, help="validation rows (default {default})")
    option(p, "--max-length", type=int, source=cfg, help="tokens per training example at most (default: %(default)s)")
    option(p, "--style", choices=("chat", "plain"), source=cfg,
           help="chat (the model's chat template, default) or plain (one prompt string)")
    p.add_argument("--persona", action="store_true", help="describe the row's persona in the system message")
    option(p, "--save-steps", type=int, source=cfg,
           help="a checkpoint every N optimizer steps, to resume from (default: %(default)s)")
    option(p, "--logging-steps", type=int, source=cfg,
           help="log the training loss every N steps, and at least ten times a run (default: %(default)s)")
    p.add_argument("--gradient-checkpointing", action="store_true",
                   help="trade compute for memory on large models (off by default: on a CPU it only costs time)")
    option(p, "--sampling", choices=("group_by_length", "random"), source=cfg,
           help="group_by_length: each batch holds rows of similar length (less padding to compute); random: "
                "rows in any order")
    option(p, "--precision", choices=("auto", "float32", "bfloat16"), source=cfg,
           help="auto: bfloat16 autocast where the GPU, or the CPU (AVX512_BF16 or AMX), computes in it natively; "
                "float32 elsewhere")
    option(p, "--seed", type=int, source=cfg, help="random seed (default: %(default)s)")
    p.add_argument("--no-resume", action="store_true", help="start over instead of resuming from a checkpoint")


def run(a: argparse.Namespace) -> None:
    from blueprint.models.finetune import finetune

    cfg = FinetuneConfig(lora=not a.no_lora, lora_r=a.lora_r, lora_alpha=a.lora_alpha, lora_dropout=a.lora_dropout,
                         target_modules=a.target_modules, learning_rate=a.learning_rate, epochs=a.epochs,
                         batch_size=a.batch_size, grad_accum=a.grad_accum, loss=a.loss, gamma=a.gamma,
                         max_steps=a.max_steps, limit=a.limit, eval_limit=a.eval_limit, max_length=a.max_length,
                         style=a.style, persona=a.persona, seed=a.seed, save_steps=a.save_steps,
                         logging_steps=a.logging_steps, gradient_checkpointing=a.gradient_checkpointing,
                         precision=a.precision, sampling=a.sampling)
    s = finetune(a.model, a.dataset, a.config, a.out, cfg, resume=not a.no_resume, progress=not a.quiet)
    first = s["train_loss"][0]["loss"] if s["train_loss"] else float("nan")
    last = s["train_loss"][-1]["loss"] if s["train_loss"] else float("nan")
    val = s["final_eval_loss"]
    logged = len(s["train_loss"])
    print(f"{a.out}: {s['steps']} steps on {s['train_rows']} rows in {s['seconds']:.0f} s ({s['precision']}); "
          f"training loss "
          f"{first:.4f} -> {last:.4f} ({logged} values logged, steps {s['train_loss'][0]['step'] if logged else '-'}"
          f"..{s['train_loss'][-1]['step'] if logged else '-'}); validation loss "
          + ("none (empty split)" if val is None else f"{val:.4f}"))
