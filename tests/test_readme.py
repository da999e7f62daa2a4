"""The README is the documentation: every shell and Python block in it runs, in order, against a fresh demo
output (the ``demo_project`` fixture), so that no command in it can rot.

Blocks that need the network or a GPU are skipped with the README's stated reason; how each block is
treated is in ``tests/readme_blocks.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from readme_blocks import JSON, PYTHON, SHELL, Block, block_env, demo_command, read_blocks

pytestmark = pytest.mark.full  # every README block against a fresh demo: minutes

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
BLOCKS = read_blocks(README)


def _param(block: Block):
    return pytest.param(block, id=block.id, marks=[pytest.mark.slow] if block.kind == "slow" else [])


@pytest.mark.parametrize("block", [_param(b) for b in BLOCKS if b.lang in SHELL | PYTHON | JSON])
def test_readme_block(block: Block, demo_project: Path) -> None:
    if block.kind in ("network", "gpu"):
        pytest.skip(f"README line {block.line} needs {'the network' if block.kind == 'network' else 'a GPU'}: "
                    f"{block.why}")
    if block.kind == "self":
        pytest.skip(f"README line {block.line} is the command that runs these tests")
    if block.kind == "demo":  # its demo command made demo_project; the install part is what .ci/run does
        assert (demo_project / "demo-out" / "leaderboard" / "index.html").is_file()
        return
    if block.lang in JSON:
        for n, line in enumerate(block.code.splitlines(), block.line + 1):
            if line.strip():
                try:
                    json.loads(line)
                except json.JSONDecodeError as exc:
                    pytest.fail(f"README line {n} is not JSON: {exc}")
        return
    _run_block(block, demo_project)


_RAN: set[int] = set()  # the README lines whose blocks have run in demo_project, in this session


def _runnable(block: Block) -> bool:
    return block.lang in SHELL | PYTHON and block.kind is None


def _run_block(block: Block, cwd: Path) -> None:
    cmd = ["bash", "-euo", "pipefail", "-c", block.code] if block.lang in SHELL else [sys.executable, "-c", block.code]
    proc = subprocess.run(cmd, cwd=cwd, env=block_env(), capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, (f"README block at line {block.line} failed with exit {proc.returncode}:\n"
                                  f"{block.code}\n--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-5000:]}")
    _RAN.add(block.line)


def test_readme_marks_the_demo_and_the_test_command() -> None:
    kinds = [b.kind for b in BLOCKS]
    assert kinds.count("demo") == 1 and kinds.count("self") == 1
    demo = next(b for b in BLOCKS if b.kind == "demo")
    assert demo_command(demo) == "blueprint demo --out demo-out"
    assert "pip install -e" in demo.code
    # .ci/run must end with exactly the README's test command
    test_command = next(b for b in BLOCKS if b.kind == "self").code.strip()
    ci = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines() if line.strip()]
    assert ci[-1] == test_command


def test_every_skip_gives_its_reason() -> None:
    for b in BLOCKS:
        if b.kind in ("network", "gpu", "slow"):
            assert b.why, f"README line {b.line}: a '{b.kind}' mark needs a reason"
    langs = {b.lang for b in BLOCKS}
    unknown = langs - SHELL - PYTHON - JSON - {"", "text", "bibtex"}
    assert not unknown, f"README blocks in languages this test does not know how to treat: {unknown}"


def test_block_reader(tmp_path: Path) -> None:
    text = ("# t\n\n<!-- readme-test: gpu: needs 16 GB -->\n\n```bash\necho hi\n```\n\nprose\n"
            "<!-- readme-test: network: x -->\nmore prose\n```python\nprint(1)\n```\n```\nplain\n```\n")
    (tmp_path / "R.md").write_text(text)
    got = read_blocks(tmp_path / "R.md")
    assert [(b.line, b.lang, b.code, b.kind, b.why) for b in got] == [
        (5, "bash", "echo hi\n", "gpu", "needs 16 GB"),
        (12, "python", "print(1)\n", None, ""),  # prose between a mark and a block cancels the mark
        (15, "", "plain\n", None, ""),
    ]
    (tmp_path / "R.md").write_text("<!-- readme-test: later: x -->\n```bash\nls\n```\n")
    with pytest.raises(ValueError, match="unknown readme-test mark"):
        read_blocks(tmp_path / "R.md")


def test_every_link_inside_the_readme_has_its_heading() -> None:
    import re

    text = README.read_text(encoding="utf-8")
    prose = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)  # headings, not comments inside code blocks
    anchors = {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
               for h in re.findall(r"^#{1,6} (.+)$", prose, flags=re.M)}
    links = set(re.findall(r"\]\(#([^)]+)\)", text))
    assert links and not links - anchors, f"links to missing headings: {sorted(links - anchors)}"
    for path in re.findall(r"\]\((?!#|https?://)([^)]+)\)", text):  # links to files in the repository
        assert (REPO / path).exists(), path


def _checksums(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` but git's own and Python's caches."""
    import hashlib

    skip = {".git", "__pycache__", ".pytest_cache"}
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not skip & set(p.relative_to(root).parts)}


def test_the_suite_run_after_the_readme_keeps_every_user_file(demo_project: Path) -> None:
    """A user followed the README in their checkout, then ran the tests: the tests pass, and every file the README
    made there (results, predictions, adapters, the secret, the work folders) keeps its checksum.

    ``demo_project`` is that checkout once the README's blocks have run in it (they are run here if this test runs
    alone). Every command wrote only what ``.gitignore`` covers, so ``git status`` lists nothing. The README's
    tests then run again, from inside it, as the user would run them (the demo output is copied, not rebuilt)."""
    import os

    for block in BLOCKS:
        if _runnable(block) and block.line not in _RAN:
            _run_block(block, demo_project)
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=demo_project,
                            capture_output=True, text=True, check=True).stdout
    assert status == "", f"the README's commands wrote files that .gitignore does not cover:\n{status}"
    before = _checksums(demo_project)
    made = {p.split("/")[0] for p in before} - {p.split("/")[0] for p in _tracked(demo_project)}
    assert {"results", "preds", "adapters", "my.secret", "my-dataset"} <= made, sorted(made)
    env = {**block_env(), "BLUEPRINT_TEST_DEMO_OUT": str(demo_project / "demo-out"), "PYTHONDONTWRITEBYTECODE": "1",
           "BLUEPRINT_TEST_CACHE": os.environ["BLUEPRINT_CACHE"]}
    proc = subprocess.run([sys.executable, "-m", "pytest", "tests/test_readme.py", "-q", "-x", "-m", "not slow",
                           "--durations=5",
                           "-k", "not keeps_every_user_file", "-p", "no:cacheprovider"],
                          cwd=demo_project, env=env, capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, f"the README's tests failed when run in a used checkout:\n{proc.stdout[-6000:]}"
    after = _checksums(demo_project)
    changed = sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))
    assert not changed, f"the tests changed files in the user's checkout: {changed[:20]}"


def _tracked(root: Path) -> list[str]:
    out = subprocess.run(["git", "ls-files"], cwd=root, capture_output=True, text=True, check=True).stdout
    return out.splitlines()
