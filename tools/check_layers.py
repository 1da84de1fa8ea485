"""Fail the build when nbtrack's module layers rot.

``python -m tools.check_layers [PACKAGE_DIR]`` (default ``python/nbtrack``) checks:

1. no import cycle among the package's modules. Every import counts, wherever it
   is written: at the top, inside a function, under ``if TYPE_CHECKING:``. A
   deferred import hides a cycle from the interpreter, not from the design.
2. no module over ``MAX_LINES`` lines (a module that grows past that is two).
3. ``<package>.store`` is imported only by ``<package>.client`` and by the modules
   of the store package itself: every other module reaches the store through the
   client.
4. no SQL outside the store package (a heuristic over string constants and
   f-strings: ``SELECT … FROM``, ``INSERT … INTO``, ``UPDATE … SET``,
   ``DELETE FROM``, ``CREATE TABLE``; docstrings do not count).

Each problem is printed on its own line with the file and line that cause it;
the exit code is 1 when there is any, else 0.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PACKAGE = ROOT / "python" / "nbtrack"
MAX_LINES = 450

# Modules outside the store package that may import it, each with its reason.
STORE_IMPORTERS = (
    "client",  # the one door to the runs
    "registry.core",  # the client of the model tables (doors reach models through it)
)

# Modules allowed to hold SQL outside the store package, each with its reason.
SQL_ALLOWED = {
    # DuckDB over the user's own CSV/Parquet/JSONL files, through a private
    # in-memory connection: never the runs store.
    "profile": "queries the user's data files, not the runs store",
    # The drift sketches of the same files, on profile.py's private connection.
    "driftsketch": "counts values of the user's data files, not the runs store",
}

_SQL = re.compile(
    r"\bSELECT\b[\s\S]*?\bFROM\b"
    r"|\bINSERT\b[\s\S]*?\bINTO\b"
    r"|\bUPDATE\s+\S+\s+SET\b"
    r"|\bDELETE\s+FROM\b"
    r"|\bCREATE\s+(?:TEMP\s+|TEMPORARY\s+)?TABLE\b"
)


@dataclass(frozen=True)
class Import:
    """One import of a module of the package: who imports what, and where."""

    source: str
    target: str
    path: Path
    line: int


@dataclass
class Module:
    name: str
    path: Path
    is_package: bool
    tree: ast.Module
    lines: int


@dataclass
class Report:
    """What the checks found: one human line per problem."""

    problems: list[str] = field(default_factory=list)

    def add(self, line: str) -> None:
        self.problems.append(line)

    @property
    def ok(self) -> bool:
        return not self.problems


# ---------------------------------------------------------------- reading the package
def load_package(package_dir: Path) -> dict[str, Module]:
    """Every ``.py`` module under ``package_dir``, by dotted name (``nbtrack.cli.runs``)."""
    package_dir = package_dir.resolve()
    base = package_dir.parent
    modules: dict[str, Module] = {}
    for path in sorted(package_dir.rglob("*.py")):
        rel = path.relative_to(base).with_suffix("")
        parts = list(rel.parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        if any(not p.isidentifier() for p in parts):
            continue  # not importable (e.g. generated assets)
        text = path.read_text(encoding="utf-8")
        modules[".".join(parts)] = Module(
            name=".".join(parts),
            path=path,
            is_package=is_package,
            tree=ast.parse(text, filename=str(path)),
            lines=len(text.splitlines()),
        )
    return modules


def _resolve_from(module: Module, node: ast.ImportFrom) -> str:
    """The absolute module named by a ``from X import ...`` statement."""
    if not node.level:
        return node.module or ""
    package = module.name.split(".")
    if not module.is_package:
        package = package[:-1]
    if node.level > 1:
        package = package[: len(package) - (node.level - 1)]
    return ".".join([*package, *([node.module] if node.module else [])])


def imports_of(module: Module, known: dict[str, Module]) -> Iterator[Import]:
    """The package modules ``module`` imports, anywhere in its body.

    ``from a import b`` is an import of ``a.b`` when that is a module, else of ``a``.
    """
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in known:
                    yield Import(module.name, alias.name, module.path, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve_from(module, node)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                if candidate in known:
                    yield Import(module.name, candidate, module.path, node.lineno)
                elif base in known:
                    yield Import(module.name, base, module.path, node.lineno)


def import_graph(modules: dict[str, Module]) -> dict[str, dict[str, Import]]:
    """``{importer: {imported: the first import statement}}`` (self-imports left out)."""
    graph: dict[str, dict[str, Import]] = {name: {} for name in modules}
    for module in modules.values():
        for imp in imports_of(module, modules):
            if imp.target != imp.source:
                graph[imp.source].setdefault(imp.target, imp)
    return graph


# ---------------------------------------------------------------- cycles
def strongly_connected(graph: dict[str, dict[str, Import]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module, each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0

    def visit(root: str) -> None:
        # Iterative: a deep chain of imports must not hit Python's recursion limit.
        nonlocal counter
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return sorted(found)


def shortest_cycle(graph: dict[str, dict[str, Import]], start: str) -> list[Import]:
    """The shortest import cycle through ``start``, as its imports (``[]`` if none)."""
    came_from: dict[str, Import] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target, imp in sorted(graph[node].items()):
                if target == start:
                    path = [imp]
                    while path[0].source != start:
                        path.insert(0, came_from[path[0].source])
                    return path
                if target not in came_from:
                    came_from[target] = imp
                    following.append(target)
        frontier = following
    return []


def cycles_of(graph: dict[str, dict[str, Import]], component: list[str]) -> list[list[Import]]:
    """One shortest cycle through each module of ``component``, each cycle listed once."""
    seen: set[frozenset[tuple[str, str]]] = set()
    cycles = []
    for start in component:
        cycle = shortest_cycle(graph, start)
        edges = frozenset((imp.source, imp.target) for imp in cycle)
        if cycle and edges not in seen:
            seen.add(edges)
            cycles.append(cycle)
    return cycles


def _where(imp: Import) -> str:
    try:
        shown = imp.path.relative_to(ROOT)
    except ValueError:
        shown = imp.path
    return f"{shown}:{imp.line}"


def check_cycles(graph: dict[str, dict[str, Import]], report: Report) -> None:
    for component in strongly_connected(graph):
        report.add(f"import cycle among {len(component)} modules: {', '.join(component)}")
        for cycle in cycles_of(graph, component):
            chain = " → ".join([imp.source for imp in cycle] + [cycle[0].source])
            report.add(f"    cycle: {chain}")
            for imp in cycle:
                report.add(f"        {imp.source} imports {imp.target} at {_where(imp)}")


# ---------------------------------------------------------------- the other rules
def check_sizes(modules: dict[str, Module], report: Report) -> None:
    for module in modules.values():
        if module.lines > MAX_LINES:
            report.add(
                f"too long: {module.name} has {module.lines} lines (at most {MAX_LINES}): "
                f"split it by concern ({_shown(module.path)})"
            )


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def _in_package(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def check_store_door(
    modules: dict[str, Module], graph: dict[str, dict[str, Import]], report: Report
) -> None:
    top = min(modules, key=len)
    store = f"{top}.store"
    allowed = {f"{top}.{name}" for name in STORE_IMPORTERS}
    for source, targets in sorted(graph.items()):
        if _in_package(source, store) or source in allowed:
            continue
        for target, imp in sorted(targets.items()):
            if _in_package(target, store):
                report.add(
                    f"store reached around the client: {source} imports {target} at "
                    f"{_where(imp)} (only {', '.join(sorted(allowed))} and {store}.* may)"
                )


def _docstring_nodes(tree: ast.Module) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and node.body
        ):
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def _string_texts(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """``(line, text)`` of every string constant and f-string (holes as ``{}``), docstrings aside."""
    docstrings = _docstring_nodes(tree)
    inside_fstring: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            parts = []
            for value in node.values:
                inside_fstring.add(id(value))
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    parts.append(value.value)
                else:
                    parts.append("{}")
            yield node.lineno, "".join(parts)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and id(node) not in inside_fstring
        ):
            yield node.lineno, node.value


def check_sql(modules: dict[str, Module], report: Report) -> None:
    top = min(modules, key=len)
    store = f"{top}.store"
    allowed = {f"{top}.{name}" for name in SQL_ALLOWED}
    for module in modules.values():
        if _in_package(module.name, store) or module.name in allowed:
            continue
        for line, text in _string_texts(module.tree):
            match = _SQL.search(text)
            if match:
                snippet = " ".join(match.group(0).split())[:60]
                report.add(
                    f"SQL outside the store: {module.name} at {_shown(module.path)}:{line}: "
                    f"{snippet!r}"
                )


def check_documented(
    modules: dict[str, Module], package_dir: Path, doc: Path, report: Report
) -> None:
    """Every module has its line in docs/architecture.md (as `path/inside/package.py`)."""
    text = doc.read_text(encoding="utf-8")
    for module in modules.values():
        rel = module.path.relative_to(package_dir).as_posix()
        if rel != "_version.py" and f"`{rel}`" not in text:  # _version.py: written by the build
            report.add(f"undocumented: {rel} has no line in {_shown(doc)}")


def check(package_dir: Path = DEFAULT_PACKAGE) -> Report:
    """Run every check on the package in ``package_dir``."""
    modules = load_package(package_dir)
    graph = import_graph(modules)
    report = Report()
    check_cycles(graph, report)
    check_sizes(modules, report)
    check_store_door(modules, graph, report)
    check_sql(modules, report)
    if package_dir.resolve() == DEFAULT_PACKAGE.resolve():
        check_documented(modules, package_dir, ROOT / "docs" / "architecture.md", report)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.check_layers",
        description="Check nbtrack's module layers: no import cycles, no module over "
        f"{MAX_LINES} lines, the store only behind the client, SQL only in the store.",
    )
    parser.add_argument(
        "package", nargs="?", type=Path, default=DEFAULT_PACKAGE, help="the package folder"
    )
    args = parser.parse_args(argv)
    report = check(args.package)
    for line in report.problems:
        print(line)
    if report.ok:
        print(f"layers ok: {_shown(args.package.resolve())}")
        return 0
    print(f"{sum(not p.startswith(' ') for p in report.problems)} layer problem(s)")
    return 1


if __name__ == "__main__":
    sys.exit(main())
