"""The capture's files: one per hour of event time, compressed with zstd once the hour is over.

A half-written last line, left by a kill, is cut when the capture starts again.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from blueprint.collect.config import FILE

log = logging.getLogger(__name__)


def hour_dir(time_us: int) -> str:
    t = datetime.fromtimestamp(time_us / 1e6, tz=UTC)
    return f"{t:%Y-%m}/{t:%d}/{t:%H}"


class HourFiles:
    """The open data files, one per hour of event time; older hours compressed as time moves on."""

    def __init__(self, root: Path, level: int) -> None:
        self.root, self.level = root, level
        self.open: dict[int, tuple[Path, BinaryIO]] = {}  # hour number -> (path, file)

    def write(self, hour: int, time_us: int, line: bytes) -> None:
        entry = self.open.get(hour)
        if entry is None:
            entry = self._open(hour, time_us)
            for old in [h for h in self.open if h < hour - 1]:
                self._close(old, compress=True)
        entry[1].write(line)

    def _open(self, hour: int, time_us: int) -> tuple[Path, BinaryIO]:
        folder = self.root / hour_dir(time_us)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / FILE
        if (folder / (FILE + ".zst")).exists() and not path.exists():
            # the hour was closed already (a straggler, or a restart): a further file beside it
            n = 1
            while (folder / f"jetstream.{n}.jsonl").exists() or (folder / f"jetstream.{n}.jsonl.zst").exists():
                n += 1
            path = folder / f"jetstream.{n}.jsonl"
        fh = open(path, "ab", buffering=1 << 20)
        self.open[hour] = (path, fh)
        return self.open[hour]

    def flush(self) -> None:
        for _, fh in self.open.values():
            fh.flush()
            os.fsync(fh.fileno())

    def _close(self, hour: int, *, compress: bool) -> None:
        path, fh = self.open.pop(hour)
        fh.flush()
        os.fsync(fh.fileno())
        fh.close()
        if compress:
            compress_file(path, self.level)

    def close(self, *, compress: bool) -> None:
        for hour in sorted(self.open):
            self._close(hour, compress=compress)


def compress_file(path: Path, level: int = 10) -> Path:
    """``path`` -> ``path.zst`` (written to a temporary name, then renamed), and ``path`` removed."""
    import zstandard

    out = path.with_name(path.name + ".zst")
    tmp = path.with_name(f".{path.name}.zst.tmp")
    with open(path, "rb") as src, open(tmp, "wb") as dst:
        zstandard.ZstdCompressor(level=level).copy_stream(src, dst)
        dst.flush()
        os.fsync(dst.fileno())
    os.replace(tmp, out)
    path.unlink()
    return out


def cut_partial_line(path: Path) -> None:
    """A kill can leave a last line half-written: cut the file back to its last newline."""
    size = path.stat().st_size
    if not size:
        return
    with open(path, "rb+") as fh:
        step = 1 << 16
        end = size
        while end > 0:
            start = max(0, end - step)
            fh.seek(start)
            block = fh.read(end - start)
            i = block.rfind(b"\n")
            if i >= 0:
                keep = start + i + 1
                break
            end = start
        else:
            keep = 0
        if keep != size:
            log.warning("collect: %s ended in a half-written line (a killed run): cut it", path.name)
            fh.truncate(keep)

