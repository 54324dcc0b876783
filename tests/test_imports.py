"""No import circles in ``voicebot/``: the module graph, read with ``ast``, has no cycle.

Every ``import`` and ``from ... import`` of a voicebot module counts, at module level, inside functions and under
``if TYPE_CHECKING:`` alike: a lazy or type-only import that closes a circle only hides it (until the day someone
moves it up, or a type checker and a reader follow it round).

Edges follow what Python executes:

- ``from a.b import c`` imports the submodule ``a.b.c`` when there is one, else the name ``c`` from ``a/b/__init__``;
- relative imports are resolved against the importing module's package;
- importing ``a.b.c`` also runs the ``__init__`` of ``a`` and ``a.b`` first, unless the importer lives inside that
  package (then the package is already loading, and only its names, imported explicitly, are an edge).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "voicebot"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int


def module_names(root: Path = ROOT) -> dict[str, Path]:
    """Dotted module name to file, for every ``.py`` under the package (``__init__`` is the package itself)."""
    modules: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _import_nodes(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement, at any depth."""
    return [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]


def _resolve_from(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module.split(".") if is_package else module.split(".")[:-1]
    if node.level > 1:
        package = package[:len(package) - (node.level - 1)]
    return ".".join(package + ([node.module] if node.module else []))


def import_edges(modules: dict[str, Path]) -> list[Edge]:
    edges: list[Edge] = []
    for module, path in modules.items():
        own_packages = set(_ancestors(module))
        is_package = path.name == "__init__.py"

        def add(target: str, line: int, explicit: bool) -> None:
            """An edge to ``target`` (when it is a voicebot module) and to the packages loaded on the way."""
            if target not in modules or target == module:
                return
            if explicit or target not in own_packages:
                edges.append(Edge(module, target, line))
            for package in _ancestors(target):
                if package in modules and package not in own_packages and package != module:
                    edges.append(Edge(module, package, line))

        for node in _import_nodes(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    add(alias.name, node.lineno, explicit=True)
                continue
            base = _resolve_from(module, is_package, node)
            if base != PACKAGE and not base.startswith(PACKAGE + "."):
                continue
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                if submodule in modules:
                    add(base, node.lineno, explicit=False)  # its __init__ runs first
                    add(submodule, node.lineno, explicit=True)
                else:
                    add(base, node.lineno, explicit=True)  # a name defined in base (its __init__ when a package)
    return edges


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iteratively: the components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
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
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return found


def _cycle_through(start: str, members: set[str], graph: dict[str, set[str]]) -> list[str]:
    """A shortest path start -> ... -> start inside one component (breadth first)."""
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node] & members):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [start, *reversed(path[:-1]), start] if node != start else [start, start]
                if child not in came_from:
                    came_from[child] = node
                    following.append(child)
        frontier = following
    return [start]


def describe(component: list[str], graph: dict[str, set[str]], edges: list[Edge], modules: dict[str, Path],
             root: Path) -> str:
    cycle = _cycle_through(component[0], set(component), graph)
    steps = []
    for source, target in zip(cycle, cycle[1:]):
        lines = sorted({e.line for e in edges if e.source == source and e.target == target})
        where = modules[source].relative_to(root.parent)
        steps.append(f"    {source} -> {target}  ({where}:{', '.join(map(str, lines))})")
    return f"  {len(component)} modules: {', '.join(component)}\n  e.g.\n" + "\n".join(steps)


def find_cycles(root: Path = ROOT) -> list[str]:
    modules = module_names(root)
    edges = import_edges(modules)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for edge in edges:
        graph[edge.source].add(edge.target)
    return [describe(component, graph, edges, modules, root) for component in strongly_connected(graph)]


def test_voicebot_has_no_import_circles():
    cycles = find_cycles()
    assert not cycles, "import circles in voicebot/ (move the shared piece into the lower module):\n" + \
        "\n".join(cycles)


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    pkg = tmp_path / PACKAGE
    for name, text in {"__init__.py": "", **files}.items():
        (pkg / name).parent.mkdir(parents=True, exist_ok=True)
        (pkg / name).write_text(text)
    return pkg


def test_the_checker_finds_a_lazy_relative_circle_through_a_package_init(tmp_path):
    files = {"sub/__init__.py": "from .low import thing\n", "sub/low.py": "thing = 1\n",
             "high.py": "def f():\n    from .sub import thing\n    return thing\n"}
    assert find_cycles(_package(tmp_path, files)) == []
    (cycle,) = find_cycles(_package(tmp_path, {"sub/low.py": "import voicebot.high\nthing = 1\n"}))
    assert "voicebot.high -> voicebot.sub " in cycle and "voicebot.sub.low -> voicebot.high " in cycle
    assert "voicebot/sub/low.py:1" in cycle


def test_the_checker_counts_type_only_imports_and_knows_a_package_is_loaded_before_its_modules(tmp_path):
    files = {"sub/__init__.py": "from voicebot.sub.low import thing\n",  # re-exports: no circle with sub.low
             "sub/low.py": "from voicebot.sub import other\nthing = 1\n", "sub/other.py": "",
             "typed.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from voicebot.sub import thing\n"}
    assert find_cycles(_package(tmp_path, files)) == []
    (cycle,) = find_cycles(_package(tmp_path, {"sub/other.py": "from ..typed import x\n"}))
    assert "voicebot.typed" in cycle and "voicebot.sub.other" in cycle
