"""``blueprint finetune``: supervised fine-tuning on a config's train split, the paper's recipe by default.

TRL's ``SFTTrainer`` trains on the prompts of :func:`blueprint.task.chat_dataset`, with
the loss on the answer alone (the prompt-completion format), and LoRA through peft by
default. The defaults are the paper's: r=16, alpha=16, dropout 0.1 on the attention
projections (q, k, v, o), learning rate 3e-4, 3 epochs, batch 2 with gradient
accumulation 16. ``loss="focal"`` with ``gamma=1`` is the paper's focal-loss variant:
each answer token's cross-entropy is weighted by ``(1 - p)^gamma``, so confidently
predicted tokens (the JSON scaffolding, the common ``like``) weigh less.

The validation loss is computed at the end of each epoch and once more at the end of
the run. Checkpoints go to ``<out>/checkpoints/`` and a run resumes from the last one.
The output folder holds the adapter (or the full model with ``lora=False``), the
tokenizer and ``blueprint_finetune.json``; it is what ``blueprint predict --model`` takes.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from blueprint._io import write_json
from blueprint.errors import BadInputError
from blueprint.task import STYLES
from blueprint.validation import check_choice, check_scalar

log = logging.getLogger(__name__)

LOSSES = ("ce", "focal")
PRECISIONS = ("auto", "float32", "bfloat16")
SAMPLINGS = ("group_by_length", "random")
SUMMARY = "blueprint_finetune.json"


@dataclass(frozen=True)
class FinetuneConfig:
    """Every setting of a fine-tuning run; recorded in ``blueprint_finetune.json``."""

    lora: bool = True
    lora_r: int = 16
    lora_alpha: int = 16
    lora_dropout: float = 0.1
    target_modules: str = "auto"  # auto: q/k/v/o projections where the model has them, else all linear layers
    learning_rate: float = 3e-4
    epochs: float = 3.0
    batch_size: int = 2
    grad_accum: int = 16
    warmup_steps: int | None = None  # None: the paper's 100, at most a tenth of the run
    loss: str = "ce"
    gamma: float = 1.0
    max_steps: int = -1
    limit: int | None = None  # train rows (a seeded sample)
    eval_limit: int | None = 1000  # validation rows
    max_length: int | None = 2048
    style: str = "chat"
    persona: bool = False
    seed: int = 0
    save_steps: int = 200
    logging_steps: int = 10
    gradient_checkpointing: bool = False  # off: on a CPU it buys memory that is there with compute that is not
    precision: str = "auto"  # auto: bfloat16 autocast where the GPU or CPU computes in it natively, else float32
    sampling: str = "group_by_length"  # batches of rows of similar length: less padding computed for nothing

    def __post_init__(self) -> None:
        check_choice(self.loss, "loss", LOSSES)
        check_choice(self.style, "style", STYLES)
        check_choice(self.precision, "precision", PRECISIONS)
        check_choice(self.sampling, "sampling", SAMPLINGS)
        check_scalar(self.lora_r, "lora_r", int, min_val=1)
        check_scalar(self.lora_dropout, "lora_dropout", min_val=0, max_val=1, include_boundaries="left")
        check_scalar(self.learning_rate, "learning_rate", min_val=0, include_boundaries="neither")
        check_scalar(self.epochs, "epochs", min_val=0, include_boundaries="neither")
        check_scalar(self.batch_size, "batch_size", int, min_val=1)
        check_scalar(self.grad_accum, "grad_accum", int, min_val=1)
        check_scalar(self.gamma, "gamma", min_val=0)
        if self.max_steps != -1:  # -1: train for the epochs
            check_scalar(self.max_steps, "max_steps", int, min_val=1)
        check_scalar(self.limit, "limit", int, min_val=1, allow_none=True)
        check_scalar(self.eval_limit, "eval_limit", int, min_val=0, allow_none=True)
        check_scalar(self.max_length, "max_length", int, min_val=1, allow_none=True)


def focal_loss_from_log_probs(log_probs, num_items: Any = None, gamma: float = 1.0, mask=None):
    """Mean focal loss over the trained tokens: ``-(1 - p)^gamma * log p`` per token.

    ``log_probs`` holds each position's log-probability of its label, 0 where the
    position is not trained (as TRL's fused head gives it); ``num_items`` is the number
    of trained tokens (in the whole accumulated batch), else ``mask.sum()``.
    """
    import torch

    per_token = -((1.0 - log_probs.exp()).clamp(min=0.0) ** gamma) * log_probs
    n = num_items if num_items is not None else mask.sum()
    return per_token.sum() / torch.as_tensor(n).clamp(min=1)


def cpu_bf16() -> str | None:
    """The CPU feature that computes bfloat16 natively (``amx_bf16`` or ``avx512_bf16``), or None.

    Without one, torch emulates bfloat16 and autocast makes training slower, not faster.
    """
    try:
        flags = next((line.split(":", 1)[1].split() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("flags")), [])
    except OSError:  # not Linux: say no, float32 is always right
        return None
    return next((f for f in ("amx_bf16", "avx512_bf16") if f in flags), None)


def training_precision(wanted: str) -> tuple[bool, str]:
    """(bfloat16 autocast on?, why), for ``FinetuneConfig.precision``."""
    import torch

    check_choice(wanted, "precision", PRECISIONS)
    if torch.cuda.is_available():
        ok = torch.cuda.is_bf16_supported()
        where = "the GPU computes in bfloat16" if ok else "the GPU has no bfloat16"
    else:
        feature = cpu_bf16()
        ok = feature is not None
        where = f"the CPU has {feature.upper()}" if feature else "the CPU has no AVX512_BF16 or AMX"
    if wanted == "float32":
        return False, "float32 (asked for)"
    if wanted == "bfloat16":
        return True, f"bfloat16 autocast (asked for; {where})"
    return (True, f"bfloat16 autocast ({where})") if ok else (False, f"float32 ({where})")


def logging_steps(every: int, total: int) -> int:
    """Log the loss every ``every`` steps, and at least ten times a run: a short run shows its loss move."""
    return max(1, min(every, total // 10))


MODELS_EXTRA = 'pip install -e ".[models]" (or pip install trl peft)'


def require_models_extra(what: str) -> None:
    """TRL and peft are an extra (``models``): the demo and scoring need neither. Say how to install them."""
    import importlib.util

    missing = [m for m in ("trl", "peft") if importlib.util.find_spec(m) is None]
    if missing:
        raise BadInputError(f"{what} needs {' and '.join(missing)}: {MODELS_EXTRA}")


def _focal_trainer(gamma: float):
    from trl import SFTTrainer

    class FocalSFTTrainer(SFTTrainer):
        """SFTTrainer with the paper's focal loss on the trained tokens."""

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            inputs["use_cache"] = False
            outputs = model(**inputs, fused_lm_head=True)
            loss = focal_loss_from_log_probs(outputs.log_probs, num_items_in_batch, gamma, outputs.label_mask)
            if self.args.average_tokens_across_devices and num_items_in_batch is not None:
                loss = loss * self.accelerator.num_processes
            return (loss, outputs) if return_outputs else loss

    return FocalSFTTrainer


def _target_modules(net, wanted: str):
    if wanted != "auto":
        return [m.strip() for m in wanted.split(",") if m.strip()] if wanted != "all-linear" else "all-linear"
    names = {n.rsplit(".", 1)[-1] for n, _ in net.named_modules()}
    paper = ["q_proj", "k_proj", "v_proj", "o_proj"]
    return paper if set(paper) <= names else "all-linear"


def _table_dataset(dataset_dir, config: str, split: str, limit: int | None, seed: int):
    import datasets
    from datasets.table import InMemoryTable

    from blueprint.data import features, read_split

    table = read_split(dataset_dir, config, split)
    ds = datasets.Dataset(InMemoryTable(table)).cast(features())
    if any(a < 0 for a in ds["action"]):
        raise BadInputError(f"the {split} split's labels are hidden; it cannot be trained on", path=dataset_dir,
                            field="split")
    if limit is not None and limit < len(ds):
        ds = ds.shuffle(seed=seed).select(range(limit))
    return ds


def finetune(model: str, dataset_dir: str | os.PathLike[str], config: str, out: str | os.PathLike[str],
             cfg: FinetuneConfig | None = None, *, resume: bool = True, progress: bool = True) -> dict:
    """Fine-tune ``model`` on ``config``'s train split; write the adapter (or model) to ``out``. Returns the summary."""
    from transformers.trainer_utils import get_last_checkpoint
    from transformers.utils import logging as hf_logging

    require_models_extra("blueprint finetune")
    from trl import SFTTrainer

    cfg = cfg or FinetuneConfig()
    hf_logging.disable_progress_bar()
    t0 = time.perf_counter()
    out = Path(out)
    tok, net, base = _load(model, cfg)
    train, evaluation = _prompts(dataset_dir, config, cfg)
    bf16, precision = training_precision(cfg.precision)
    args, total = _training_args(cfg, out, len(train), bool(len(evaluation)), progress, bf16)
    peft_config = None
    if cfg.lora:
        from peft import LoraConfig

        peft_config = LoraConfig(task_type="CAUSAL_LM", r=cfg.lora_r, lora_alpha=cfg.lora_alpha,
                                 lora_dropout=cfg.lora_dropout, target_modules=_target_modules(net, cfg.target_modules),
                                 bias="none")
    trainer_cls = _focal_trainer(cfg.gamma) if cfg.loss == "focal" else SFTTrainer
    trainer = trainer_cls(model=net, args=args, train_dataset=train,
                          eval_dataset=evaluation if len(evaluation) else None,
                          processing_class=tok, peft_config=peft_config)
    kept = trainer.train_dataset
    if kept is None or len(kept) == 0:  # type: ignore[arg-type]  # a datasets.Dataset: it has a length
        raise BadInputError(f"no train row keeps its answer within max_length={cfg.max_length} tokens of "
                            f"{model}'s tokenizer: every prompt is longer; raise --max-length", field="max_length")
    if not progress:  # no per-step log dicts on stdout either
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    last = get_last_checkpoint(str(out / "checkpoints")) if resume and (out / "checkpoints").is_dir() else None
    if last:
        log.info("finetune: resuming from %s", last)
    log.info("finetune: %d train rows, %d validation rows, %d optimizer steps (%s, loss %s, %s, gradient "
             "checkpointing %s)", len(train), len(evaluation), total, "LoRA" if cfg.lora else "full", cfg.loss,
             precision, "on" if cfg.gradient_checkpointing else "off")
    t_train = time.perf_counter()
    trainer.train(resume_from_checkpoint=last)
    steps_run = trainer.state.global_step - (int(Path(last).name.rsplit("-", 1)[-1]) if last else 0)
    train_seconds = time.perf_counter() - t_train
    history = list(trainer.state.log_history)
    final_eval = _final_eval(trainer, history, has_validation=bool(len(evaluation)))
    trainer.save_model(str(out))
    tok.save_pretrained(str(out))
    summary = {
        "base_model": str(model), "base": base, "dataset_config": config, "config": asdict(cfg), "resumed_from": last,
        "train_rows": len(train), "validation_rows": len(evaluation), "steps": trainer.state.global_step,
        "train_loss": [{"step": h["step"], "loss": h["loss"]} for h in history if "loss" in h],
        "eval_loss": [{"step": h["step"], "epoch": h.get("epoch"), "loss": h["eval_loss"]}
                      for h in history if "eval_loss" in h],
        "final_eval_loss": final_eval.get("eval_loss"), "seconds": round(time.perf_counter() - t0, 1),
        "precision": precision, "train_seconds": round(train_seconds, 1),
        "seconds_per_step": round(train_seconds / steps_run, 3) if steps_run > 0 else None,
    }
    write_json(out / SUMMARY, summary)
    return summary


def _load(model: str, cfg: FinetuneConfig) -> tuple[Any, Any, dict]:
    """(tokenizer, model in float32, the base's record); the tokenizer pads with its eos token when it has no
    pad token."""
    import torch

    from blueprint.models.sources import load_lm, resolve_lm

    source = resolve_lm(model)
    tok, net = load_lm(source, torch.float32)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if cfg.style == "chat" and not getattr(tok, "chat_template", None):
        raise BadInputError(f"{model} has no chat template; use --style plain", field="style")
    return tok, net, source.record()


def _prompts(dataset_dir: str | os.PathLike[str], config: str, cfg: FinetuneConfig) -> tuple[Any, Any]:
    """The train and validation splits as prompt-completion rows (the loss goes on the answer alone)."""
    from blueprint.data import parse_config_name
    from blueprint.task import chat_dataset, load_personas

    personas = load_personas(dataset_dir, parse_config_name(config)[0]) if cfg.persona else None
    train = chat_dataset(_table_dataset(dataset_dir, config, "train", cfg.limit, cfg.seed), personas=personas,
                         style=cfg.style, prompt_completion=True, remove_columns=True)
    if not len(train):
        raise BadInputError(f"the train split of {config} is empty", path=dataset_dir, field="config")
    evaluation = chat_dataset(_table_dataset(dataset_dir, config, "validation", cfg.eval_limit, cfg.seed),
                              personas=personas, style=cfg.style, prompt_completion=True, remove_columns=True)
    return train, evaluation


def _training_args(cfg: FinetuneConfig, out: Path, train_rows: int, has_validation: bool, progress: bool, bf16: bool
                   ) -> tuple[Any, int]:
    """TRL's ``SFTConfig`` for the run, and its number of optimizer steps."""
    import torch
    from trl import SFTConfig

    steps_per_epoch = math.ceil(train_rows / (cfg.batch_size * cfg.grad_accum))
    total = cfg.max_steps if cfg.max_steps > 0 else math.ceil(steps_per_epoch * cfg.epochs)
    warmup = cfg.warmup_steps if cfg.warmup_steps is not None else min(100, total // 10)
    cuda = torch.cuda.is_available()
    args = SFTConfig(
        output_dir=str(out / "checkpoints"), per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size, gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.learning_rate, num_train_epochs=cfg.epochs, max_steps=cfg.max_steps,
        warmup_steps=warmup, lr_scheduler_type="linear", logging_steps=logging_steps(cfg.logging_steps, total),
        logging_first_step=True,
        eval_strategy="epoch" if has_validation else "no", save_strategy="steps", save_steps=cfg.save_steps,
        save_total_limit=2,
        seed=cfg.seed, data_seed=cfg.seed, report_to="none", max_length=cfg.max_length, completion_only_loss=True,
        train_sampling_strategy=cfg.sampling, bf16=bf16, use_cpu=not cuda, disable_tqdm=not progress,
        dataloader_num_workers=0,
        # TRL turns checkpointing on unless told; transformers 5 names it activation_checkpointing
        activation_checkpointing=cfg.gradient_checkpointing,
    )
    return args, total


def _final_eval(trainer: Any, history: list[dict], *, has_validation: bool) -> dict:
    """The validation loss at the end of the run: the last epoch's when it ended with the run, else computed
    now (and added to ``history``); empty without a validation split."""
    if not has_validation:
        log.warning("finetune: the validation split is empty; no validation loss")
        return {}
    evals = [h for h in history if "eval_loss" in h]
    if evals and evals[-1]["step"] == trainer.state.global_step:
        return evals[-1]
    final: dict = trainer.evaluate()
    history.append({**final, "step": trainer.state.global_step})
    return final
