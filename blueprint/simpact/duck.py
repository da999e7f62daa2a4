"""DuckDB connections set up the pipeline's way: no progress bar, bounded memory, a spill folder of our choosing.

The threads stage, the time ranking and the export's id check each open one. DuckDB's
own default spill folder is ``./.tmp`` in the working directory; every connection
here names its own, beside the stage's files.
"""

from __future__ import annotations

import os


def connect(database: str | os.PathLike[str] = ":memory:", *, temp_directory: str | os.PathLike[str],
            memory_limit: str | None = None, threads: int | None = None, ordered: bool = True):
    """A DuckDB connection. ``ordered=False`` lets DuckDB drop insertion order (every order that matters is then
    an ``ORDER BY``)."""
    import duckdb

    con = duckdb.connect(str(database))
    # Inside a Jupyter kernel without ipywidgets DuckDB starts with the bar off and refuses any change to the
    # setting ("required package 'ipywidgets' is missing"): set it only where it is on.
    (bar_on,) = con.execute("SELECT current_setting('enable_progress_bar')").fetchone() or (False,)
    if bar_on:
        con.execute("SET enable_progress_bar = false")
    con.execute(f"SET temp_directory = '{_quote(temp_directory)}'")
    if not ordered:
        con.execute("SET preserve_insertion_order = false")
    if memory_limit:
        con.execute(f"SET memory_limit = '{_quote(memory_limit)}'")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


def _quote(value: str | os.PathLike[str]) -> str:
    return os.fspath(value).replace("'", "''")
