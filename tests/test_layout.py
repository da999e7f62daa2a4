"""The layout holds: no import cycle, the pipeline apart from the benchmark side, modules of one idea each.

The imports are read from the source (every ``import`` statement, those inside functions
too, but not those under ``if TYPE_CHECKING:``), so a cycle that only a lazy import
makes is found as well. ARCHITECTURE.md describes the layering these tests keep.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "blueprint"

# the only places outside the pipeline that may import it (benchmarks live outside the package)
MAY_IMPORT_SIMPACT = ("blueprint.cli", "blueprint.demo")
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 80


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _skipped_lines(tree: ast.Module) -> set[int]:
    """Lines whose imports are no dependency of the module's own code: every ``if TYPE_CHECKING:`` block (imports
    for annotations), and a module-level ``__getattr__`` (it hands another module's names on, when asked for,
    as ``blueprint.data`` does for the builder: a package ``__init__`` that re-exports does the same eagerly)."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "__getattr__":
            lines.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    return lines


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The blueprint modules ``name`` imports: ``from P import x`` counts as importing P.x when that is a module."""
    tree = ast.parse(path.read_text())
    skip = _skipped_lines(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("blueprint"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package of this module
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            if not base.startswith("blueprint"):
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in modules else base)
    return {m for m in found if m in modules and m != name}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = all_modules()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the list of modules around it, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def test_the_import_walk_sees_the_imports(graph):
    # a check of the checker, by hand: edges this project is known to have, lazy ones included
    assert "blueprint.simpact.embed" in graph["blueprint.simpact.pipeline"]
    assert "blueprint.embedding" in graph["blueprint.metrics.suite"]
    assert "blueprint.simpact.threads.sql" in graph["blueprint.simpact.threads.stage"]  # from P import submodule
    assert "blueprint.simpact.privacy" in graph["blueprint.simpact.engine"]  # inside a function
    assert "blueprint.builder" not in graph["blueprint.data"]  # handed on by __getattr__, not used
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_there_is_no_import_cycle(graph):
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_only_the_cli_the_demo_and_the_pipeline_import_the_pipeline(graph):
    outside = {(m, d) for m, deps in graph.items() for d in deps
               if d.startswith("blueprint.simpact") and not m.startswith("blueprint.simpact")
               and not m.startswith(MAY_IMPORT_SIMPACT)}
    assert not outside, sorted(outside)


def test_the_foundations_stand_alone(graph):
    """embedding, pii, atproto, actions and validation import nothing of the benchmark side or the pipeline."""
    foundations = ("blueprint.embedding", "blueprint.pii", "blueprint.atproto", "blueprint.actions",
                   "blueprint.validation", "blueprint.errors")
    above = ("blueprint.simpact", "blueprint.metrics", "blueprint.baselines", "blueprint.leaderboard",
             "blueprint.models", "blueprint.cli", "blueprint.demo", "blueprint.synth")
    bad = {(m, d) for m, deps in graph.items() if m.startswith(foundations) for d in deps if d.startswith(above)}
    assert not bad, sorted(bad)


def test_modules_and_functions_stay_small():
    big_modules, long_functions = [], []
    for name, path in all_modules().items():
        src = path.read_text()
        if len(src.splitlines()) > MAX_MODULE_LINES:
            big_modules.append((name, len(src.splitlines())))
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = (node.end_lineno or node.lineno) - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long_functions.append((f"{name}.{node.name}", n))
    assert not big_modules, big_modules
    assert not long_functions, long_functions


def _requirements() -> tuple[set[str], dict[str, set[str]]]:
    """setup.cfg's install_requires and extras, as normalised distribution names."""
    import configparser
    import re

    cfg = configparser.ConfigParser()
    cfg.read(PACKAGE.parent / "setup.cfg")

    def names(text: str) -> set[str]:
        lines = [x.split("#")[0].strip() for x in text.splitlines()]
        return {re.split(r"[\[<>=!~; ]", x)[0].lower().replace("_", "-") for x in lines if x}

    extras = {k: names(v) for k, v in cfg["options.extras_require"].items()}
    return names(cfg["options"]["install_requires"]), extras


def _third_party_imports() -> dict[str, dict[str, str]]:
    """Every third-party module the package imports: {top-level name: {module: 'top' or 'lazy'}}. An import at a
    module's top level runs when the module is imported; one inside a function only when that code runs."""
    import sys

    found: dict[str, dict[str, str]] = {}
    for name, path in all_modules().items():
        tree = ast.parse(path.read_text())
        skip = _skipped_lines(tree)
        top = {id(n) for n in tree.body}
        for node in ast.walk(tree):
            if getattr(node, "lineno", None) in skip:
                continue
            targets = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and not node.level and node.module else []
            for t in targets:
                root = t.split(".")[0]
                if root != "blueprint" and root not in sys.stdlib_module_names:
                    where = "top" if id(node) in top else "lazy"
                    if found.setdefault(root, {}).get(name) != "top":
                        found[root][name] = where
    return found


def test_the_core_install_covers_every_import_and_the_extras_the_rest():
    """``pip install -e .`` (the Quick start) gives every module an importable package: each third-party import at
    a module's top level is in install_requires. An import of an extra's package (``models``, ``gbdt``,
    ``fast-embed``, ``ray``) happens only inside the function that needs it, which says how to install it."""
    from importlib.metadata import packages_distributions

    core, extras = _requirements()
    dist_of = packages_distributions()
    optional = set().union(*(v for k, v in extras.items() if k != "dev"))
    problems = []
    for root, where in sorted(_third_party_imports().items()):
        dists = {d.lower().replace("_", "-") for d in dist_of.get(root, [root])}
        if dists & core:
            continue
        if dists & optional:
            eager = sorted(m for m, w in where.items() if w == "top")
            if eager:
                problems.append(f"{root} (an extra's) is imported at the top of {eager}")
            continue
        problems.append(f"{root} ({sorted(dists)}) is in neither install_requires nor an extra: {sorted(where)}")
    assert not problems, problems
    assert {"trl", "peft"} <= extras["models"] and not {"trl", "peft", "sentence-transformers"} & core
    assert all(v <= extras["dev"] | core for k, v in extras.items() if k != "dev")  # dev holds every extra
