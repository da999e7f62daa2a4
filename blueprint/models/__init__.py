"""Language models in the loop: :mod:`blueprint.models.predict` (a transformers engine and an
OpenAI-compatible engine) and :mod:`blueprint.models.finetune` (TRL's ``SFTTrainer`` with peft LoRA).

torch, transformers, trl and peft are imported only inside the functions that use them.
"""

from __future__ import annotations

from pathlib import Path


def is_adapter(path: str | Path) -> bool:
    """True when ``path`` is a folder holding a peft adapter (``adapter_config.json``)."""
    return (Path(path) / "adapter_config.json").is_file()
