"""``blueprint experiment``: the paper's base-against-fine-tuned comparison on one persona config."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from blueprint.cli._args import option
from blueprint.cli._common import dataset_options
from blueprint.models.experiment import ExperimentConfig, cpu_finetune
from blueprint.models.finetune import FinetuneConfig


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("experiment", help="the paper's experiment: a base model without and with the persona, and "
                                          "fine-tuned, each predicted and scored",
                       description="Predicts the config's test rows three times (the base model without the persona "
                                   "description, with it, and after LoRA fine-tuning on the train split), scores "
                                   "each with intervals, and writes OUT/experiment.md (the table), "
                                   "OUT/experiment.json, OUT/predictions/, OUT/results/ and OUT/adapter/. The "
                                   "defaults fit about half an hour of a 2-core CPU with the packaged model. An "
                                   "interrupted run resumes.")
    p.add_argument("--model", required=True,
                   help="smollm2-135m-instruct (the packaged real model), a .gguf file, a local folder or a Hub id")
    dataset_options(p, split=False)
    p.add_argument("--out", required=True, type=Path, help="the experiment's folder")
    option(p, "--max-new-tokens", type=int, source=ExperimentConfig, help="the longest answer, in tokens")
    option(p, "--batch-size", type=int, source=ExperimentConfig, help="prompts per generate call")
    option(p, "--limit", type=int, source=ExperimentConfig,
           help="answer N test rows, a sample stratified by cluster (default: every row)")
    option(p, "--seed", type=int, source=ExperimentConfig, help="the sample's and the training's seed")
    ft = cpu_finetune()
    p.add_argument("--max-steps", type=int, default=ft.max_steps, help="fine-tuning: optimizer steps")
    p.add_argument("--train-batch-size", type=int, default=ft.batch_size, help="fine-tuning: rows per step")
    p.add_argument("--learning-rate", type=float, default=ft.learning_rate, help="fine-tuning: peak learning rate")
    p.add_argument("--lora-r", type=int, default=ft.lora_r, help="fine-tuning: LoRA rank (and alpha)")
    p.add_argument("--loss", choices=("ce", "focal"), default=ft.loss,
                   help="fine-tuning: ce (cross-entropy) or focal (the paper's variant, with --gamma)")
    p.add_argument("--gamma", type=float, default=ft.gamma, help="fine-tuning: the focal loss's exponent")
    p.add_argument("--train-limit", type=int, default=None, help="fine-tuning: train on N rows (default: every row)")


def run(a: argparse.Namespace) -> None:
    from blueprint.models.experiment import RUNS, run_experiment

    ft: FinetuneConfig = replace(cpu_finetune(), max_steps=a.max_steps, batch_size=a.train_batch_size,
                                 learning_rate=a.learning_rate, lora_r=a.lora_r, lora_alpha=a.lora_r,
                                 limit=a.train_limit, seed=a.seed, loss=a.loss, gamma=a.gamma)
    cfg = ExperimentConfig(max_new_tokens=a.max_new_tokens, batch_size=a.batch_size, limit=a.limit, seed=a.seed,
                           finetune=ft)
    report = run_experiment(a.model, a.dataset, a.config, a.out, cfg, progress=not a.quiet)
    print((a.out / "experiment.md").read_text())
    for name in RUNS:
        print(f"  {name}: {report['runs'][name]['results']}")
