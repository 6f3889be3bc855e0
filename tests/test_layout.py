"""The package's layout: folders are layers, imports point down, no circle anywhere.

The import graph is read from the source with :mod:`ast` (nothing is imported): module-level
imports and imports inside functions both count, imports under ``if TYPE_CHECKING:`` do not
(they never run). ``from pkg import name`` counts as importing ``pkg.name`` when that is a
submodule, else as importing ``pkg``. A package's ``__init__`` is not an edge of its
submodules (Python runs it first, but that is containment, not a dependency).

The layer order (lowest first) is what the code needs, not a wish:

- ``base``: the plain modules at the top of the package (errors, intervals, documents,
  catalog, signals, faults...). They import only each other.
- ``store``: the database (engines, models, migrations, config, policies, ingest).
- ``rollup``: the rollup rule and its SQL; pure computations over store rows.
- ``archive``: the archive run writes rollups (``rollup``) into Parquet.
- ``frames``: ``load_frame`` reads the database *and* the archive's Parquet store, so it
  sits above ``archive``.
- ``collect``: the collector needs only ``store`` and ``base``; it sits above ``frames`` only
  because the order is a line.
- ``analysis``: coverage, gaps, summaries, comparisons, breaches and forecasts over frames:
  the numbers the report, the explorer and the notebooks all show.
- ``reporting``: lays the analysis out as HTML, PDF and JSON (and mails it).
- ``explorer``: the web page shows frames *and* reports (its report tab calls
  ``reporting``), so it sits above ``reporting`` rather than beside it.
- ``shell``: ``scheduler`` (runs collect, archive and report jobs), ``cli``, ``__main__`` and
  the package facade ``metrics_toolkit/__init__.py`` (it re-exports names from every layer).
"""

from __future__ import annotations

import ast
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path

import metrics_toolkit

PACKAGE = "metrics_toolkit"
ROOT = Path(metrics_toolkit.__file__).parent

#: Lowest first. A module may import its own layer (without a circle) and the layers below.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("base",),
    ("store",),
    ("rollup",),
    ("archive",),
    ("frames",),
    ("collect",),
    ("analysis",),
    ("reporting",),
    ("explorer",),
    ("shell",),
)
SHELL = {"scheduler", "cli", "__main__", ""}
MAX_PLAIN_MODULES = 12


@dataclass
class Module:
    name: str
    path: Path
    is_package: bool
    imports: dict[str, int] = field(default_factory=dict)  # imported module -> first line


def _modules(root: Path = ROOT) -> dict[str, Module]:
    found: dict[str, Module] = {}
    for path in sorted(root.rglob("*.py")):
        parts = [PACKAGE, *path.relative_to(root).with_suffix("").parts]
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        name = ".".join(parts)
        found[name] = Module(name, path, is_package)
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _statements(node: ast.AST) -> list[ast.AST]:
    """Every statement below ``node`` (functions and classes included), skipping TYPE_CHECKING."""
    found: list[ast.AST] = []
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child):
            for branch in child.orelse:
                found.append(branch)
                found.extend(_statements(branch))
            continue
        found.append(child)
        found.extend(_statements(child))
    return found


def _targets(module: Module, node: ast.AST, known: dict[str, Module]) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name.split(".")[0] == PACKAGE]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        package = module.name if module.is_package else module.name.rpartition(".")[0]
        parts = package.split(".")
        if node.level > 1:
            parts = parts[: -(node.level - 1)]
        base = ".".join([*parts, *([node.module] if node.module else [])])
    else:
        base = node.module or ""
    if base.split(".")[0] != PACKAGE:
        return []
    return [
        f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names
    ]


def import_graph(root: Path = ROOT) -> dict[str, Module]:
    """Every module of the package with the package modules it imports (the edges)."""
    known = _modules(root)
    for module in known.values():
        tree = ast.parse(module.path.read_text(encoding="utf-8"), str(module.path))
        for node in _statements(tree):
            for target in _targets(module, node, known):
                if target != module.name:
                    module.imports.setdefault(target, getattr(node, "lineno", 0))
    return known


def find_cycles(graph: dict[str, Module]) -> list[list[str]]:
    """The import circles: one path per strongly connected group of two or more modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(name: str) -> None:
        index[name] = low[name] = len(index)
        stack.append(name)
        on_stack.add(name)
        for target in graph[name].imports if name in graph else ():
            if target not in index:
                visit(target)
                low[name] = min(low[name], low[target])
            elif target in on_stack:
                low[name] = min(low[name], index[target])
        if low[name] == index[name]:
            group: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == name:
                    break
            if len(group) > 1:
                groups.append(_circle_in(sorted(group), graph))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return groups


def _circle_in(group: list[str], graph: dict[str, Module]) -> list[str]:
    """One concrete circle through the group's first module (breadth-first, shortest)."""
    members = set(group)
    start = group[0]
    paths: dict[str, list[str]] = {start: [start]}
    queue = [start]
    while queue:
        name = queue.pop(0)
        for target in sorted(graph[name].imports):
            if target == start:
                return [*paths[name], start]
            if target in members and target not in paths:
                paths[target] = [*paths[name], target]
                queue.append(target)
    return group


def layer_of(name: str) -> str:
    parts = name.split(".")
    top = parts[1] if len(parts) > 1 else ""
    if top in SHELL:
        return "shell"
    if len(parts) == 2 and not (ROOT / top).is_dir():
        return "base"
    return top


def _rank(layer: str) -> int:
    for rank, names in enumerate(LAYERS):
        if layer in names:
            return rank
    raise AssertionError(f"layer {layer!r} is not in LAYERS: place the new package there")


def _describe(circle: list[str], graph: dict[str, Module]) -> str:
    steps = [
        f"{here} (line {graph[here].imports[there]}) -> {there}"
        for here, there in itertools.pairwise(circle)
    ]
    return "\n    ".join(steps)


def test_the_graph_sees_function_level_imports_and_skips_type_checking(tmp_path: Path) -> None:
    """The walker itself: a circle made only by an import inside a function is found, one
    under ``if TYPE_CHECKING:`` is not, and ``from pkg import sub`` is an edge to ``pkg.sub``."""
    package = tmp_path / PACKAGE
    (package / "inner").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "inner" / "__init__.py").write_text("")
    (package / "a.py").write_text("from metrics_toolkit.inner import b\n")
    (package / "inner" / "b.py").write_text("def f():\n    from metrics_toolkit import a\n")
    (package / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from metrics_toolkit import a\n"
    )
    (package / "d.py").write_text("from . import c\nfrom .inner.b import f\n")
    graph = import_graph(package)
    assert graph["metrics_toolkit.a"].imports == {"metrics_toolkit.inner.b": 1}
    assert graph["metrics_toolkit.c"].imports == {}
    assert set(graph["metrics_toolkit.d"].imports) == {
        "metrics_toolkit.c",
        "metrics_toolkit.inner.b",
    }
    assert find_cycles(graph) == [
        ["metrics_toolkit.a", "metrics_toolkit.inner.b", "metrics_toolkit.a"]
    ]


def test_no_import_circle() -> None:
    graph = import_graph()
    assert len(graph) > 100, "the walker found too few modules"
    cycles = find_cycles(graph)
    report = "\n".join(f"circle:\n    {_describe(circle, graph)}" for circle in cycles)
    assert not cycles, report


def test_imports_point_down_the_layers() -> None:
    graph = import_graph()
    upward = [
        f"{name} ({layer_of(name)}) line {line} imports {target} ({layer_of(target)})"
        for name, module in sorted(graph.items())
        for target, line in sorted(module.imports.items())
        if _rank(layer_of(target)) > _rank(layer_of(name))
    ]
    assert not upward, "\n".join(upward)


def test_at_most_twelve_plain_modules_at_the_top() -> None:
    plain = sorted(
        path.name for path in ROOT.glob("*.py") if path.name not in {"__init__.py", "__main__.py"}
    )
    assert len(plain) <= MAX_PLAIN_MODULES, plain


def test_the_library_core_imports_neither_the_cli_nor_streamlit() -> None:
    """Click lives in ``cli/``; Streamlit only in the explorer's page (``explorer/app.py``)."""
    offenders = []
    for module in _modules().values():
        tree = ast.parse(module.path.read_text(encoding="utf-8"))
        for node in _statements(tree):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and not node.level
                else []
            )
            for imported in names:
                top = imported.split(".")[0]
                if top == "click" and not module.name.startswith(f"{PACKAGE}.cli"):
                    offenders.append(f"{module.name} imports click")
                if top == "streamlit" and module.name != f"{PACKAGE}.explorer.app":
                    offenders.append(f"{module.name} imports streamlit")
    assert not offenders, offenders


def test_every_design_citation_names_a_section_of_docs_design_md() -> None:
    """Docstrings cite ``docs/design.md §N``; each N is a section there (none cites the old
    citation of a DESIGN file the repository does not have)."""
    design = (ROOT.parent / "docs" / "design.md").read_text(encoding="utf-8")
    sections = {int(n) for n in re.findall(r"^## (\d+)\. ", design, flags=re.MULTILINE)}
    cited: set[int] = set()
    for path in [*ROOT.rglob("*.py"), *(ROOT.parent / "tests").rglob("*.py")]:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"\bDESIGN(\.md)? §", text), path
        for first, last in re.findall(r"docs/design\.md\s+§(\d+)(?:-(\d+))?", text):
            cited.update(range(int(first), int(last or first) + 1))
    assert cited and cited <= sections, (cited, sections)
