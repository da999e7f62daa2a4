"""A private file written inside a git work tree that does not ignore it is one ``git add .`` away from being
published: the commands that write one (a pseudonym secret, a build's raw work folder, held-out labels) warn."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

log = logging.getLogger(__name__)


def unignored_in_git(path: str | os.PathLike[str]) -> Path | None:
    """The root of the git work tree that holds ``path`` without ignoring it, or ``None`` (outside any work tree,
    ignored there, or no ``git`` on this machine). ``path`` need not exist yet."""
    path = Path(path).absolute()
    git = shutil.which("git")
    parent = next((p for p in (path, *path.parents) if p.is_dir()), None)
    if git is None or parent is None:
        return None
    top = subprocess.run([git, "-C", str(parent), "rev-parse", "--show-toplevel"], capture_output=True, text=True)
    if top.returncode != 0:
        return None
    root = Path(top.stdout.strip()).resolve()
    if path.resolve() == root:
        return None
    # --no-index: whether the ignore rules cover the path, tracked or not
    check = subprocess.run([git, "-C", str(root), "check-ignore", "-q", "--no-index", str(path.resolve())],
                           capture_output=True)
    return root if check.returncode == 1 else None


def warn_if_unignored(path: str | os.PathLike[str], what: str) -> bool:
    """Warn, saying how to ignore it, when ``path`` lies in a git work tree that does not ignore it."""
    root = unignored_in_git(path)
    if root is None:
        return False
    rel = Path(path).resolve().relative_to(root).as_posix()
    entry = f"/{rel}/" if Path(path).is_dir() else f"/{rel}"
    log.warning("%s %s lies inside the git work tree %s, which does not ignore it: a 'git add' would publish it. "
                "Ignore it with: echo '%s' >> %s", what, rel, root, entry, root / ".gitignore")
    return True
