"""One wording for every bad parameter: ``check_*`` helpers, called once at each public boundary.

In the spirit of scikit-learn's ``check_scalar``: each helper returns the value when it
is good and raises :class:`~blueprint.errors.BadInputError` otherwise, with ``field``
set to the parameter's name. Names are those of the config dataclasses and function
parameters (``max_depth``, ``batch_size``); the command line shows the flag instead
(``--max-depth``), so a message names what the user typed.

Data problems inside files (a line, a field of a record) are not parameters: the
readers report those themselves, with the file and line.
"""

from __future__ import annotations

import difflib
import numbers
from collections.abc import Iterable
from typing import Any, Literal, TypeVar

from blueprint.errors import BadInputError

T = TypeVar("T")
Boundaries = Literal["both", "left", "right", "neither"]

_TYPE_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def _type_name(target_type: type | tuple[type, ...]) -> str:
    types = target_type if isinstance(target_type, tuple) else (target_type,)
    if set(types) == {int, float} or types == (numbers.Real,):
        return "a number"
    return " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)


def check_scalar(value: T, name: str, target_type: type | tuple[type, ...] = (int, float), *,
                 min_val: float | None = None, max_val: float | None = None,
                 include_boundaries: Boundaries = "both", allow_none: bool = False) -> T:
    """``value`` when it is a ``target_type`` within the bounds; else :class:`BadInputError` on ``name``.

    ``include_boundaries`` says which bounds the value may equal: ``both``, ``left``
    (``min_val`` only), ``right`` (``max_val`` only) or ``neither``. A bool is never
    taken for a number. ``allow_none`` lets None through (an optional setting).
    """
    if value is None and allow_none:
        return value
    wants_number = all(issubclass(t, numbers.Real) and t is not bool
                       for t in (target_type if isinstance(target_type, tuple) else (target_type,)))
    if not isinstance(value, target_type) or (wants_number and isinstance(value, bool)):
        raise BadInputError(f"must be {_type_name(target_type)}, got {value!r}", field=name)
    low_ok = include_boundaries in ("both", "left")
    high_ok = include_boundaries in ("both", "right")
    below = min_val is not None and (value < min_val if low_ok else value <= min_val)  # type: ignore[operator]
    above = max_val is not None and (value > max_val if high_ok else value >= max_val)  # type: ignore[operator]
    if below or above:
        raise BadInputError(f"must be {_range(min_val, max_val, low_ok, high_ok)}, got {value!r}", field=name)
    return value


def _range(low: float | None, high: float | None, low_ok: bool, high_ok: bool) -> str:
    if high is None:
        return f"at least {low}" if low_ok else f"greater than {low}"
    if low is None:
        return f"at most {high}" if high_ok else f"less than {high}"
    return f"in {'[' if low_ok else '('}{low}, {high}{']' if high_ok else ')'}"


def check_choice(value: T, name: str, options: Iterable[Any]) -> T:
    """``value`` when it is one of ``options``; else :class:`BadInputError` listing them (with the closest)."""
    options = list(options)
    if value in options:
        return value
    hint = ""
    if isinstance(value, str):
        close = difflib.get_close_matches(value, [str(o) for o in options], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
    listed = ", ".join(repr(o) for o in options)
    raise BadInputError(f"must be one of {listed}, got {value!r}{hint}", field=name)


def check_fractions(fractions: Iterable[float], name: str, *, n: int) -> tuple[float, ...]:
    """``n`` non-negative numbers that sum to 1 (within 1e-9), as floats."""
    values = tuple(fractions)
    if len(values) != n or any(isinstance(f, bool) or not isinstance(f, numbers.Real) or f < 0 for f in values) \
            or abs(sum(values) - 1.0) > 1e-9:
        raise BadInputError(f"must be {n} non-negative numbers that sum to 1, got {list(values)}", field=name)
    return tuple(float(f) for f in values)
