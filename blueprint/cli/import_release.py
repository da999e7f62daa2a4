"""``blueprint import-release``: a copy of the public BluePrint release as a BluePrint dataset folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from blueprint.cli._args import ints


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import-release", help="turn a copy of the public BluePrint release into a dataset folder",
                       description="Reads a copy of the public release (https://huggingface.co/datasets/"
                                   "ComplexDataLab/BluePrint: processed_{k}_clusters/cluster_{i}.jsonl), checks "
                                   "every line field by field (a bad one is named by file, line and field, exit "
                                   "2), and writes a BluePrint dataset folder: a config per partition and per "
                                   "persona, the benchmark's train/validation/test splits, a card that credits the "
                                   "release, a manifest and a persona report per partition. Every command then "
                                   "takes the folder (--dataset DATASET_DIR).")
    p.add_argument("release_dir", type=Path, metavar="DIR", help="the folder holding processed_{k}_clusters/")
    p.add_argument("--out", required=True, type=Path, metavar="DATASET_DIR", help="the dataset folder to write")
    p.add_argument("--partitions", type=ints, default=None,
                   help="only these partitions, e.g. 2,25 (default: every processed_{k}_clusters/ folder)")


def run(a: argparse.Namespace) -> None:
    from blueprint.simpact.release import import_release

    r = import_release(a.release_dir, a.out, partitions=a.partitions, progress=not a.quiet)
    print(f"dataset: {a.out} ({', '.join(f'{k}_clusters {r.rows[k]:,} threads' for k in r.partitions)}; "
          f"{len(r.configs)} configs; fingerprint {r.fingerprint})")
