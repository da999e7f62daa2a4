from __future__ import annotations

import subprocess
import sys

import pytest

from blueprint.cli import main


def test_missing_input_path_is_exit_2_with_one_line(tmp_path, capsys):
    missing = tmp_path / "nope"
    rc = main(["build", str(missing), "--out", str(tmp_path / "ds")])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert str(missing) in err[0] and "no such file or directory" in err[0]
    assert not (tmp_path / "ds").exists()


def test_console_entry_point_exit_code(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "blueprint.cli", "validate", str(tmp_path / "p.jsonl"),
                           "--dataset", str(tmp_path), "--config", "2_clusters"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("blueprint: error:")


@pytest.mark.parametrize("argv", [["synth", "--out", "x", "--users", "many"], ["build"], ["frobnicate"],
                                  ["build", "a", "--out", "b", "--partitions", "2,x"]])
def test_usage_errors_are_exit_2(argv, capsys):
    assert main(argv) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_bad_synth_option_names_the_field(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path / "r"), "--pii-rate", "2"]) == 2
    assert capsys.readouterr().err == "blueprint: error: field '--pii-rate': must be in [0, 1], got 2.0\n"


@pytest.mark.parametrize("argv,flag", [
    (["--splits", "0.5,0.5,0.5"], "--splits"),  # ExportConfig.fractions
    (["--max-depth", "1"], "--max-depth"),  # ThreadConfig.max_depth
    (["--partitions", "2,2"], "--partitions"),  # ClusterConfig.partitions
    (["--num-gpus", "1"], "--engine"),  # the command's own check
])
def test_a_bad_setting_is_named_by_its_flag(argv, flag, tmp_path, capsys):
    raw = tmp_path / "raw.jsonl"
    raw.write_text("")
    assert main(["build", str(raw), "--out", str(tmp_path / "ds"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"blueprint: error: field '{flag}': ") and err.count("\n") == 1, err
    assert not (tmp_path / "ds").exists()


def test_the_library_names_the_config_field():
    from blueprint.errors import BadInputError
    from blueprint.simpact.config import ExportConfig
    from blueprint.synth import SynthConfig

    with pytest.raises(BadInputError) as err:
        SynthConfig(pii_rate=2)
    assert err.value.field == "pii_rate" and str(err.value) == "field 'pii_rate': must be in [0, 1], got 2"
    with pytest.raises(BadInputError) as err:
        ExportConfig(fractions=(0.5, 0.5, 0.5))
    assert err.value.field == "fractions"


def test_scrub_reads_stdin(tmp_path):
    text = "Email jane.doe@example.com or call (416) 555-2671; cc @alex.bsky.social\nNo PII in 2025, e.g. Bill C-69.\n"
    proc = subprocess.run([sys.executable, "-m", "blueprint.cli", "scrub"], input=text, capture_output=True,
                          text=True, check=True)
    assert proc.stdout.splitlines() == [
        "Email <EMAIL_ADDRESS> or call <PHONE_NUMBER>; cc @<USERNAME>",
        "No PII in 2025, e.g. Bill C-69.",
    ]


def test_scrub_json_gives_spans():
    import orjson

    proc = subprocess.run([sys.executable, "-m", "blueprint.cli", "scrub", "--json"], input="hi @a.bsky.social\n",
                          capture_output=True, text=True, check=True)
    assert orjson.loads(proc.stdout) == {"text": "hi @a.bsky.social", "spans": [
        {"type": "USERNAME", "start": 4, "end": 17, "text": "a.bsky.social"}]}


def test_every_option_has_help_and_baseline_help_lists_the_baselines(capsys):
    import argparse

    from blueprint.baselines import available
    from blueprint.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for command, parser in sub.choices.items():
        for action in parser._actions:
            assert action.help, (command, action.dest)
    with pytest.raises(SystemExit):
        main(["baseline", "--help"])
    out = capsys.readouterr().out
    assert all(name in out for name in available())


def test_map_labels_do_not_pile_up():
    import numpy as np

    from blueprint.simpact.report import spread_labels

    rng = np.random.default_rng(0)
    coords = rng.normal(size=(500, 2)) * 10
    anchors = np.zeros((25, 2)) + rng.normal(size=(25, 2)) * 0.01  # every cluster's median in one spot
    pos = spread_labels(anchors, coords)
    gaps = np.linalg.norm(pos[:, None] - pos[None], axis=-1)[np.triu_indices(25, 1)]
    assert gaps.min() > 0.5 * 0.04 * np.ptp(coords, axis=0).max()  # was 0.01-ish: labels on top of each other
    assert np.abs(pos).max() < 0.5 * np.ptp(coords, axis=0).max()  # and still near their clusters
