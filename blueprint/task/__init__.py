"""Next-action prediction as a language-model task: an example becomes a prompt, an answer becomes a label.

- :mod:`.prompt`: :func:`to_messages`, :func:`to_target`, :func:`chat_dataset`, personas;
- :mod:`.answer`: the answer schema and :func:`parse_output`.

Everything here is deterministic: the same example gives the same prompt, byte for byte.
"""

from blueprint.task.answer import (
                                   MAX_TEXT,
                                   PAPER_KEYS,
                                   PRECEDENCE,
                                   ParsedOutput,
                                   format_answer,
                                   parse_output,
                                   text_problem,
)
from blueprint.task.prompt import (
                                   STYLES,
                                   SYSTEM_PROMPT,
                                   Persona,
                                   Turn,
                                   chat_dataset,
                                   context,
                                   load_personas,
                                   system_message,
                                   to_messages,
                                   to_target,
)

__all__ = ["MAX_TEXT", "PAPER_KEYS", "PRECEDENCE", "STYLES", "SYSTEM_PROMPT", "ParsedOutput", "Persona", "Turn",
           "chat_dataset", "context", "format_answer", "load_personas", "parse_output", "system_message",
           "text_problem", "to_messages", "to_target"]
