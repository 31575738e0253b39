"""The import graph of ``gpunet/``, read from the source, follows the design.

The graph is built without importing anything: every ``.py`` under ``gpunet/`` is parsed with
:mod:`ast`, and every ``import``/``from ... import`` anywhere in it (module level, inside
functions and methods, under ``if``/``try``, including ``if TYPE_CHECKING:`` blocks), plus
``importlib.import_module("constant")`` and ``__import__("constant")``, becomes an edge
*importer -> imported module*. Relative imports are resolved against the importer's package.
Imports of modules outside ``gpunet`` are dropped.

Nodes and edges
    A node is a module; a package's node is its ``__init__.py`` (the package *face*).
    ``import a.b.c`` (with or without ``as``) is an edge to ``a.b.c`` only. Python loads ``a``
    and ``a.b`` first, but a parent that is still initialising is harmless as long as nothing is
    taken *from* it, so counting parents would only make every submodule "depend" on its own
    package's ``__init__``.
    ``from a.b import c`` is an edge to the submodule ``a.b.c`` when ``a/b/c.py`` (or
    ``a/b/c/__init__.py``) exists, and otherwise to the face ``a.b``, because taking a *name*
    from a package needs that ``__init__`` to have run up to the line that defines it.

Cycles (rule ``cycles``)
    Any strongly connected component of two or more modules is a cycle. So a package's
    ``__init__`` importing its own submodules is an ordinary edge (face -> submodule), and a
    submodule importing a sibling with ``from . import sibling`` is an edge to the sibling,
    not to the face. But a submodule that takes a name back from its package's face
    (``from gpunet.nn import Linear`` inside ``gpunet/nn/conv.py``) while that face imports
    it, directly or through other modules, closes a cycle: whichever is imported first sees
    the other half-initialised. Imports deferred into a function count too: deferring hides a
    cycle from the import machinery, not from the design (the two modules still need each
    other, and the cycle comes back as soon as someone hoists the import).

Layering rules (the table ``RULES``)
    Each row forbids edges from a set of importers to a set of imported modules. Patterns are
    module names; ``x.**`` means every module strictly below ``x`` (not ``x`` itself). A row
    with ``indirect=True`` also forbids reaching the target through other modules.

Each rule has a self-test on a small synthetic tree under ``tmp_path`` that must be caught,
so none of these tests can pass by checking nothing.
"""

from __future__ import annotations

import ast
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "gpunet"


@dataclass(frozen=True)
class Rule:
    name: str
    importers: tuple[str, ...]
    imported: tuple[str, ...]
    why: str
    importers_except: tuple[str, ...] = ()
    imported_except: tuple[str, ...] = ()
    indirect: bool = False


EVERYONE = ("gpunet", "gpunet.**")
LAUNCHERS = ("gpunet.cuda.**",)  # everything in gpunet/cuda/ but the dispatch that picks one

RULES: tuple[Rule, ...] = (
    Rule("face", importers=EVERYONE, importers_except=("gpunet", "gpunet.cli", "gpunet.cli.**"),
         imported=("gpunet",),
         why="only gpunet/__init__.py and the CLI may import the package face `gpunet` "
             "(`from gpunet import backend` names the submodule and is fine)"),
    Rule("autograd-below-ops", importers=("gpunet.autograd", "gpunet.autograd.**"),
         imported=("gpunet.functional", "gpunet.functional.**", "gpunet.ops", "gpunet.ops.**"),
         indirect=True,
         why="the autograd engine sits below the ops: it must not reach gpunet.functional or "
             "gpunet.ops, directly or through other modules"),
    Rule("no-launchers-in-ops",
         importers=("gpunet.functional", "gpunet.functional.**", "gpunet.ops", "gpunet.ops.**"),
         imported=LAUNCHERS, imported_except=("gpunet.cuda.dispatch",),
         why="ops reach GPU kernels only through gpunet.cuda.dispatch, never a launcher module"),
    Rule("cli-is-the-top", importers=EVERYONE, importers_except=("gpunet.cli", "gpunet.cli.**"),
         imported=("gpunet.cli", "gpunet.cli.**"),
         why="nothing in the library imports the command line"),
    Rule("bench-is-for-the-cli", importers=EVERYONE,
         importers_except=("gpunet.cli", "gpunet.cli.**", "gpunet.bench", "gpunet.bench.**"),
         imported=("gpunet.bench", "gpunet.bench.**"),
         why="only the CLI (and the benchmarks themselves) import gpunet.bench"),
)


# ----- reading the graph ---------------------------------------------------------------------

@dataclass(frozen=True)
class Edge:
    importer: str
    imported: str
    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.importer} -> {self.imported}"


def discover(root: Path, package: str = PACKAGE) -> dict[str, tuple[Path, bool]]:
    """``{module name: (file, is_package)}`` for every .py below ``root`` (the package folder)."""
    modules: dict[str, tuple[Path, bool]] = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        modules[".".join((package, *parts))] = (path, is_package)
    return modules


def _known(name: str, modules: dict[str, tuple[Path, bool]]) -> str | None:
    """``name`` if it is a module of the tree, else its longest prefix that is (None: external)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def _targets(node: ast.AST, module: str, is_package: bool, modules: dict) -> list[str]:
    if isinstance(node, ast.Import):
        return [t for alias in node.names if (t := _known(alias.name, modules))]
    if isinstance(node, ast.ImportFrom):
        if node.level:
            base_parts = module.split(".") if is_package else module.split(".")[:-1]
            base_parts = base_parts[:len(base_parts) - (node.level - 1)]
            base = ".".join(base_parts + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        out = []
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            target = sub if alias.name != "*" and sub in modules else _known(base, modules)
            if target:
                out.append(target)
        return out
    if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
            and isinstance(node.args[0].value, str):
        func = node.func
        called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if called in ("import_module", "__import__") and not node.args[0].value.startswith("."):
            target = _known(node.args[0].value, modules)
            return [target] if target else []
    return []


def build_graph(root: Path, package: str = PACKAGE) -> dict[str, list[Edge]]:
    """``{module: [edges out of it]}`` for the tree at ``root``; self-imports are left out."""
    modules = discover(root, package)
    graph: dict[str, list[Edge]] = {name: [] for name in modules}
    for name, (path, is_package) in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        shown = path.relative_to(root.parent).as_posix()
        for node in ast.walk(tree):
            for target in _targets(node, name, is_package, modules):
                edge = Edge(name, target, shown, node.lineno)
                if target != name and edge not in graph[name]:
                    graph[name].append(edge)
    return graph


# ----- checking it ---------------------------------------------------------------------------

def matches(name: str, patterns: tuple[str, ...]) -> bool:
    for pattern in patterns:
        if pattern.endswith(".**"):
            if name.startswith(pattern[:-2]):
                return True
        elif name == pattern:
            return True
    return False


def rule_violations(rule: Rule, graph: dict[str, list[Edge]]) -> list[str]:
    def importer_ok(name: str) -> bool:
        return not matches(name, rule.importers) or matches(name, rule.importers_except)

    def forbidden(name: str) -> bool:
        return matches(name, rule.imported) and not matches(name, rule.imported_except)

    found = []
    for module in sorted(graph):
        if importer_ok(module):
            continue
        for edge in graph[module]:
            if forbidden(edge.imported):
                found.append(str(edge))
        if rule.indirect:  # shortest chains through modules that are not themselves forbidden
            seen, queue = {module}, deque([(module, ())])
            while queue:
                here, chain = queue.popleft()
                for edge in graph[here]:
                    if edge.imported in seen:
                        continue
                    seen.add(edge.imported)
                    if forbidden(edge.imported):
                        if chain:  # a direct edge is reported above
                            found.append(" ; ".join(str(e) for e in (*chain, edge)) + " (indirect)")
                    else:
                        queue.append((edge.imported, (*chain, edge)))
    return found


def strongly_connected(graph: dict[str, list[Edge]]) -> list[set[str]]:
    """Tarjan's strongly connected components (iterative: no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        work.append((node, iter(graph[node])))

    for root in sorted(graph):
        if root in index:
            continue
        work: list = []
        visit(root)
        while work:
            node, edges = work[-1]
            for edge in edges:
                if edge.imported not in index:
                    visit(edge.imported)
                    break
                if edge.imported in on_stack:
                    low[node] = min(low[node], index[edge.imported])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    components.append(component)
    return components


def _shortest_cycle(graph: dict[str, list[Edge]], start: str, component: set[str]) -> list[Edge]:
    parents: dict[str, Edge] = {}
    queue = deque([start])
    while queue:
        here = queue.popleft()
        for edge in graph[here]:
            if edge.imported == start:
                path = [edge]
                while path[0].importer != start:
                    path.insert(0, parents[path[0].importer])
                return path
            if edge.imported in component and edge.imported not in parents:
                parents[edge.imported] = edge
                queue.append(edge.imported)
    raise AssertionError(f"{start} is in a strongly connected component but on no cycle")


def cycles(graph: dict[str, list[Edge]]) -> list[list[Edge]]:
    """Cycles to break, one per edge to cut (roughly): take the shortest cycle through the
    smallest-named module of a strongly connected component, report it, drop its closing edge
    (the one back into that module) and look again, until no component is left. Cycles through
    the package face therefore end in the offending ``-> gpunet`` edge."""
    graph = {name: list(edges) for name, edges in graph.items()}
    found: list[list[Edge]] = []
    while True:
        components = [c for c in strongly_connected(graph) if len(c) > 1]
        if not components:
            return sorted(found, key=lambda c: [e.importer for e in c])
        for component in components:
            start = min(component)
            cycle = _shortest_cycle(graph, start, component)
            found.append(cycle)
            closing = cycle[-1]
            graph[closing.importer] = [e for e in graph[closing.importer] if e.imported != start]


def cycle_report(graph: dict[str, list[Edge]]) -> list[str]:
    return [" -> ".join([c[0].importer] + [e.imported for e in c]) + "\n      "
            + "\n      ".join(str(e) for e in c) for c in cycles(graph)]


def _fail_listing(title: str, offenders: list[str]) -> None:
    if offenders:
        pytest.fail(f"{title}: {len(offenders)} offender(s)\n  " + "\n  ".join(offenders), pytrace=False)


# ----- the real tree -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def graph() -> dict[str, list[Edge]]:
    return build_graph(REPO / PACKAGE)


def test_the_graph_is_read(graph):
    """Guards the other tests against a reader that sees nothing."""
    assert len(graph) > 30 and "gpunet.nn.module" in graph
    edges = {(e.importer, e.imported) for es in graph.values() for e in es}
    assert ("gpunet.nn", "gpunet.nn.module") in edges
    assert ("gpunet.nn.module", "gpunet.autograd") in edges


def test_no_import_cycles(graph):
    _fail_listing("import cycles (see this file's docstring for the rule)", cycle_report(graph))


@pytest.mark.parametrize("rule", RULES, ids=[r.name for r in RULES])
def test_layering_rule(rule, graph):
    _fail_listing(f"rule {rule.name!r}: {rule.why}", rule_violations(rule, graph))


# ----- self-tests on synthetic trees: each rule catches what it should ----------------------

def make_tree(tmp_path: Path, files: dict[str, str]) -> Path:
    """A package ``gpunet`` under ``tmp_path`` with the given ``{relative path: source}``."""
    root = tmp_path / PACKAGE
    for rel, source in {"__init__.py": "", **files}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    for folder in {p.parent for p in root.rglob("*.py")}:  # every folder a package
        (folder / "__init__.py").touch()
    return root


CLEAN = {
    "__init__.py": "from gpunet import nn, backend\nfrom gpunet.nn import Linear\n",
    "backend.py": "import numpy\n",
    "autograd.py": "from gpunet import backend\n",
    "nn/__init__.py": "from gpunet.nn.linear import Linear\nfrom .module import Module\n",
    "nn/module.py": "from gpunet import backend\nfrom ..autograd import x\n",
    "nn/linear.py": "from . import module\nfrom gpunet.nn.module import Module\n",
    "functional/math.py": "from gpunet.autograd import Tensor\nfrom gpunet.cuda import dispatch\n",
    "cuda/dispatch.py": "def f():\n    from gpunet.cuda import raw_ops\n",
    "cuda/raw_ops.py": "import numpy\n",
    "cli/__init__.py": "import gpunet\nfrom gpunet.bench import run\n",
    "bench/__init__.py": "from gpunet.bench.runner import run\n",
    "bench/runner.py": "from gpunet import nn\n",
}


def test_a_clean_tree_has_no_violations(tmp_path):
    graph = build_graph(make_tree(tmp_path, CLEAN))
    assert cycles(graph) == []
    for rule in RULES:
        assert rule_violations(rule, graph) == [], rule.name


def test_imports_are_resolved_as_documented(tmp_path):
    graph = build_graph(make_tree(tmp_path, {
        **CLEAN,
        "nn/conv.py": ("import gpunet.nn.module as m\nfrom .. import backend\nfrom . import Linear\n"
                       "from gpunet.nn import *\n"
                       "def later():\n    import importlib\n    importlib.import_module('gpunet.autograd')\n"),
    }))
    assert sorted(e.imported for e in graph["gpunet.nn.conv"]) == [
        "gpunet.autograd", "gpunet.backend", "gpunet.nn", "gpunet.nn", "gpunet.nn.module"]
    assert {e.imported for e in graph["gpunet.nn"]} == {"gpunet.nn.linear", "gpunet.nn.module"}
    assert {e.imported for e in graph["gpunet.nn.module"]} == {"gpunet.backend", "gpunet.autograd"}


@pytest.mark.parametrize(("files", "expected"), [
    ({"nn/module.py": "from gpunet.nn import Linear\n"},  # a name back from its own face
     "gpunet.nn -> gpunet.nn.module -> gpunet.nn"),
    ({"autograd.py": "def f():\n    from gpunet.functional import math\n"},  # deferred: counts
     "gpunet.autograd -> gpunet.functional.math -> gpunet.autograd"),
    ({"backend.py": "import gpunet.data.a\n", "data/a.py": "from gpunet.data import b\n",
      "data/b.py": "from gpunet import autograd\n"},  # through three modules
     "gpunet.autograd -> gpunet.backend -> gpunet.data.a -> gpunet.data.b -> gpunet.autograd"),
], ids=["submodule-to-own-face", "inside-a-function", "long"])
def test_cycles_are_caught(tmp_path, files, expected):
    report = cycle_report(build_graph(make_tree(tmp_path, {**CLEAN, **files})))
    assert len(report) == 1 and report[0].startswith(expected + "\n"), report


VIOLATIONS = {
    "face": ({"nn/linear.py": "import gpunet\n"}, "gpunet.nn.linear -> gpunet"),
    "autograd-below-ops": ({"backend.py": "from gpunet.functional import math\n"},
                           "gpunet.autograd -> gpunet.backend ; gpunet/backend.py:1: "
                           "gpunet.backend -> gpunet.functional.math (indirect)"),
    "no-launchers-in-ops": ({"functional/math.py": "from gpunet.cuda.raw_ops import f\n"},
                            "gpunet.functional.math -> gpunet.cuda.raw_ops"),
    "cli-is-the-top": ({"nn/linear.py": "def f():\n    from gpunet.cli import main\n"},
                       "gpunet.nn.linear -> gpunet.cli"),
    "bench-is-for-the-cli": ({"train.py": "from gpunet.bench import runner\n"},
                             "gpunet.train -> gpunet.bench.runner"),
}


def test_every_rule_has_a_self_test():
    assert set(VIOLATIONS) == {rule.name for rule in RULES}


@pytest.mark.parametrize("rule", RULES, ids=[r.name for r in RULES])
def test_each_rule_catches_its_violation(tmp_path, rule):
    files, expected = VIOLATIONS[rule.name]
    graph = build_graph(make_tree(tmp_path, {**CLEAN, **files}))
    found = rule_violations(rule, graph)
    assert len(found) == 1 and expected in found[0], found
    others = [r.name for r in RULES if r is not rule and rule_violations(r, graph)]
    assert others == [], others  # the synthetic violation breaks only its own rule


def test_a_failing_rule_lists_its_offenders(tmp_path):
    graph = build_graph(make_tree(tmp_path, {**CLEAN, **VIOLATIONS["face"][0]}))
    with pytest.raises(pytest.fail.Exception, match=r"1 offender\(s\)\n  gpunet/nn/linear.py:1: "):
        _fail_listing("rule 'face'", rule_violations(RULES[0], graph))
