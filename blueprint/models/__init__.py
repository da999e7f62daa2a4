"""Language models in the loop.

- :mod:`.engine`: the :class:`~blueprint.models.engine.Engine` protocol and the generation settings;
  one engine per module: :mod:`.transformers_engine`, :mod:`.openai_engine`;
- :mod:`.predict`: the driver that turns a split into a valid submission through any engine;
- :mod:`.finetune`: TRL's ``SFTTrainer`` with peft LoRA, the paper's recipe;
- :mod:`.tiny`: tiny random models made on the spot, for tests and the offline notebook.

torch, transformers, trl and peft are imported only inside the functions that use them.
"""

from __future__ import annotations

from pathlib import Path


def is_adapter(path: str | Path) -> bool:
    """True when ``path`` is a folder holding a peft adapter (``adapter_config.json``)."""
    return (Path(path) / "adapter_config.json").is_file()
