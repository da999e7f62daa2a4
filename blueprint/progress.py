"""Progress bars for long stages (tqdm on stderr), off in tests and non-interactive runs unless asked."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from tqdm.auto import tqdm


@contextlib.contextmanager
def progress_bar(*, total: int | None, desc: str, unit: str = "it", enabled: bool = True) -> Iterator[tqdm]:
    """A tqdm bar that is a no-op when ``enabled`` is False."""
    bar = tqdm(total=total, desc=desc, unit=unit, disable=not enabled, leave=False, dynamic_ncols=True)
    try:
        yield bar
    finally:
        bar.close()
