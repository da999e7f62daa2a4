"""The dataset's features, its splits, and loading.

One row per thread, compatible with the public release ``ComplexDataLab/BluePrint``:
``thread`` (messages with ``user_id``, ``text``, ``relative_integer_time`` and, on the
last message only, the 13 ``actions`` flags) and ``cluster_id``; this project adds
``id``, ``action`` (a ClassLabel over :data:`blueprint.ACTIONS`) and ``target_text``.

Splits are assigned by a hash of each example's raw identity (:func:`split_key`), so a
thread lands in the same split in every partition, every rebuild, with any secret and
any removal list.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from blueprint.actions import ACTIONS
from blueprint.errors import BadInputError

SPLITS: tuple[str, ...] = ("train", "validation", "test")
MANIFEST = "blueprint_manifest.json"
"""The build's manifest in a dataset directory: rows per config and split, partitions, the build fingerprint."""
DEFAULT_FRACTIONS: tuple[float, float, float] = (0.9, 0.05, 0.05)
_CONFIG_RE = re.compile(r"^(?P<k>\d+)_clusters(?:_c(?P<c>\d+))?$")


def features():
    """The ``datasets.Features`` of a BluePrint row (imported lazily: datasets is heavy)."""
    import datasets

    message = {
        "user_id": datasets.Value("string"),
        "text": datasets.Value("string"),
        "relative_integer_time": datasets.Value("int64"),
        "actions": {a: datasets.Value("bool") for a in ACTIONS},
    }
    return datasets.Features(
        {
            "id": datasets.Value("string"),
            "thread": [message],
            "cluster_id": datasets.Value("int64"),
            "action": datasets.ClassLabel(names=list(ACTIONS)),
            "target_text": datasets.Value("string"),
        }
    )


def content_id(action: str, messages: Sequence[tuple[int, str | None]], secret: bytes | None = None) -> str:
    """The id of a thread known only by its released content (the public release): a hash of the action,
    the ranks and the texts.

    A build from raw records uses :func:`example_id` instead, which does not change when
    a text is scrubbed differently or a user's words become ``<REMOVED>``.
    """
    payload = b"blueprint-id-v1\x00" + orjson.dumps([action, [[r, t] for r, t in messages]])
    if secret is None:
        return hashlib.sha256(payload).hexdigest()[:32]
    return hmac.new(secret, payload, hashlib.sha256).hexdigest()[:32]


def example_id(identity: bytes, secret: bytes) -> str:
    """The id of an exported example: HMAC-SHA256 of its raw identity (its records' URIs, action and time).

    Keyed, so a reader cannot recompute ids and recover hidden test labels by trying
    the 13 candidate actions; raw, so removals and scrubbing never change it.
    """
    return hmac.new(secret, b"blueprint-id-v2\x00" + identity, hashlib.sha256).hexdigest()[:32]


def split_key(identity: bytes) -> str:
    """What an exported example's split is drawn from: an unkeyed hash of its raw identity.

    The same raw data gives the same splits whatever the secret, the removals or the
    scrubbing, so two teams who build from the same records get the same test set.
    """
    return hashlib.sha256(b"blueprint-split-v1\x00" + identity).hexdigest()


def split_of(key: str, fractions: tuple[float, float, float] = DEFAULT_FRACTIONS) -> str:
    """``train``, ``validation`` or ``test``, from a hash of ``key`` alone (:func:`split_key`, or a release id)."""
    u = int(hashlib.sha256(key.encode()).hexdigest()[:15], 16) / float(1 << 60)
    train, val, _ = fractions
    if u < train:
        return "train"
    if u < train + val:
        return "validation"
    return "test"


def config_name(k: int, cluster: int | None = None) -> str:
    """``{k}_clusters`` for a partition, ``{k}_clusters_c{i}`` for one of its clusters."""
    return f"{k}_clusters" if cluster is None else f"{k}_clusters_c{cluster}"


def parse_config_name(name: str) -> tuple[int, int | None]:
    """The inverse of :func:`config_name`; a clear error for anything else."""
    m = _CONFIG_RE.match(name)
    if not m:
        raise BadInputError(f"bad config name {name!r}: expected '<k>_clusters' or '<k>_clusters_c<i>'",
                            field="config")
    return int(m.group("k")), (int(m.group("c")) if m.group("c") is not None else None)


def load_dataset(config: str, split: str | None = None, *, data_dir: str | os.PathLike[str], **kwargs: Any):
    """Load one config of an exported dataset directory through ``datasets.load_dataset``.

    ``split=None`` gives a ``DatasetDict`` of every split. Extra keyword arguments
    (``streaming=True``, ``cache_dir=...``) pass through.

    datasets (5.2) keys its cache for a local folder on the folder's path and card, not
    on the data files' times, so after a rebuild in place a plain
    ``datasets.load_dataset(folder, ...)`` can return the old rows. Unless a
    ``cache_dir`` is given, this function caches under a fingerprint of the config's
    files (names, sizes, modification times), so a rebuilt dataset is always re-read.
    """
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    data_dir = Path(data_dir)
    card = data_dir / "README.md"
    if not card.is_file():
        raise BadInputError("not a BluePrint dataset directory (no README.md)", path=data_dir)
    try:
        names = datasets.get_dataset_config_names(str(data_dir))
    except Exception as exc:  # datasets raises YAML, value and type errors for a broken card
        raise BadInputError(f"cannot read the configs in the dataset card ({type(exc).__name__}: {exc})",
                            path=card) from None
    if config not in names:
        raise BadInputError(f"unknown config {config!r}; available: {names}", path=card, field="config")
    if split is not None and split not in SPLITS:
        raise BadInputError(f"bad split {split!r}; available splits: {list(SPLITS)}", field="split")
    # a damaged file would otherwise surface deep inside datasets, without its name
    for f in sorted((data_dir / "data" / config).glob("*.parquet")):
        try:
            pq.read_metadata(f)
        except (pa.ArrowInvalid, OSError) as exc:
            raise BadInputError(f"unreadable Parquet file ({exc})", path=f) from None
    if "cache_dir" not in kwargs and not kwargs.get("streaming"):
        cache = Path(datasets.config.HF_DATASETS_CACHE) / "blueprint" / _files_fingerprint(data_dir, config)
        kwargs["cache_dir"] = str(cache)
    return datasets.load_dataset(str(data_dir), config, split=split, **kwargs)


def _files_fingerprint(data_dir: Path, config: str) -> str:
    h = hashlib.sha256()
    for f in [data_dir / "README.md", *sorted((data_dir / "data" / config).glob("*.parquet"))]:
        st = f.stat()
        h.update(f"{f.name}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:20]


def read_manifest(dataset_dir: str | os.PathLike[str]) -> dict:
    """A dataset directory's :data:`MANIFEST`; a clear error when the folder is not a built dataset."""
    from blueprint._io import read_json

    p = Path(dataset_dir) / MANIFEST
    if not p.is_file():
        raise BadInputError(f"not a BluePrint dataset directory (no {MANIFEST})", path=dataset_dir)
    return read_json(p)


def split_files(dataset_dir: str | os.PathLike[str], config: str, split: str) -> list[Path]:
    """The Parquet shards of one config and split; a clear error when there are none."""
    if split not in SPLITS:
        raise BadInputError(f"bad split {split!r}; available splits: {list(SPLITS)}", field="split")
    d = Path(dataset_dir)
    if not (d / "README.md").is_file():
        raise BadInputError("not a BluePrint dataset directory (no README.md)", path=d)
    folder = d / "data" / config
    if not folder.is_dir():
        available = sorted(p.name for p in (d / "data").iterdir() if p.is_dir()) if (d / "data").is_dir() else []
        raise BadInputError(f"unknown config {config!r}; available: {available}", path=d, field="config")
    files = sorted(folder.glob(f"{split}-*.parquet"))
    if not files:
        raise BadInputError(f"no Parquet files for split {split!r}", path=folder)
    return files


def read_split(dataset_dir: str | os.PathLike[str], config: str, split: str, columns: list[str] | None = None):
    """One config and split as a ``pyarrow.Table``, read straight from its shards."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = []
    for f in split_files(dataset_dir, config, split):
        try:
            tables.append(pq.read_table(f, columns=columns))
        except (pa.ArrowInvalid, OSError) as exc:
            raise BadInputError(f"unreadable Parquet file ({exc})", path=f) from None
    return pa.concat_tables(tables)


def __getattr__(name: str):
    # the builder classes live in blueprint.builder, which imports datasets: blueprint.data stays light
    if name in ("BluePrint", "BluePrintConfig", "PUBLIC_PARTITIONS"):
        from blueprint import builder

        return getattr(builder, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
