"""What every command's parser shares: usage errors as bad input, list types, defaults from the library.

A default is never written twice: :func:`option` takes it from the config dataclass
field (or the function parameter) the option sets, and records which flag stands for
that field, so that an error the library raises about ``max_depth`` is shown to the
user as being about ``--max-depth`` (:func:`flag_for`).
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

from blueprint.errors import BadInputError

_FLAGS = "_blueprint_flags"  # parser attribute: config field -> the flag that sets it


class DefaultsShown(argparse.HelpFormatter):
    """Every option's help ends with its default, as the user would type it (:func:`show`), unless the help
    already gives it or there is none to give (no value, a switch, a help action)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        quiet = (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse._HelpAction, argparse._VersionAction)
        if (not action.option_strings or isinstance(action, quiet) or action.default in (None, argparse.SUPPRESS)
                or "default" in text.lower()):
            return action.help
        return f"{text} (default: {show(action.default).replace('%', '%%')})"


class _RawDefaultsShown(argparse.RawDescriptionHelpFormatter, DefaultsShown):
    pass


class Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line and exit 2 like every other bad input, and every option's help
    shows its default (:class:`DefaultsShown`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        given = kwargs.get("formatter_class", argparse.HelpFormatter)
        kwargs["formatter_class"] = _RawDefaultsShown if issubclass(given, argparse.RawDescriptionHelpFormatter) \
            else DefaultsShown
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        raise BadInputError(f"{message} (see: {self.prog} --help)")


def ints(text: str) -> tuple[int, ...]:
    """Comma-separated integers: ``2,25``."""
    try:
        values = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one integer")
    return values


def floats(text: str) -> tuple[float, ...]:
    """Comma-separated numbers: ``0.9,0.05,0.05``."""
    try:
        return tuple(float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def default(owner: type | Callable[..., Any], name: str) -> Any:
    """The default of field ``name`` of a dataclass, or of parameter ``name`` of a function or class."""
    if dataclasses.is_dataclass(owner):
        for f in dataclasses.fields(owner):
            if f.name == name:
                if f.default is not dataclasses.MISSING:
                    return f.default
                if f.default_factory is not dataclasses.MISSING:
                    return f.default_factory()
                raise KeyError(f"{owner.__name__}.{name} has no default")
        raise KeyError(f"{owner.__name__} has no field {name!r}")
    value = inspect.signature(owner).parameters[name].default
    if value is inspect.Parameter.empty:
        raise KeyError(f"{owner.__qualname__}({name}) has no default")
    return value


def option(parser: argparse.ArgumentParser, *flags: str, source: type | Callable[..., Any] | None = None,
           field: str | None = None, **kwargs: Any) -> argparse.Action:
    """``parser.add_argument(*flags, **kwargs)`` with the default of ``source``'s ``field`` (by default the
    option's own name); the field is then shown as the flag in error messages. ``{default}`` in the help
    becomes the default as the user would type it (:func:`show`)."""
    action = parser.add_argument(*flags, **kwargs)
    field = field or action.dest
    if source is not None:
        if "default" in kwargs:
            raise TypeError(f"{flags[0]}: give either a source or a default")
        action.default = default(source, field)
    if action.help and "{default}" in action.help:
        action.help = action.help.replace("{default}", show(action.default))
    owner = parser
    while hasattr(owner, "_container"):  # a group of options: the parser that holds it
        owner = owner._container
    vars(owner).setdefault(_FLAGS, {})[field] = flags[0]
    return action


def show(value: Any) -> str:
    """A default as the user would type it: ``2,25`` for a tuple, ``5`` for 5.0, ``none`` for None."""
    if value is None:
        return "none"
    if isinstance(value, (tuple, list)):
        return ",".join(show(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def flag_for(parser: argparse.ArgumentParser, field: str | None) -> str | None:
    """The flag that sets ``field`` in ``parser``'s command (an option's own name counts too); None if none."""
    if field is None:
        return None
    named = vars(parser).get(_FLAGS, {}).get(field)
    if named is not None:
        return named
    for action in parser._actions:
        if action.dest == field and action.option_strings:
            return action.option_strings[0]
    return None
