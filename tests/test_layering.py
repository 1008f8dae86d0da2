"""gvr's floors, read from the source's imports: every import points down, and none goes round.

    gvrbase  <-  models  <-  export  <-  gvrcli runtime  <-  gvrcli CLI

``gvrbase`` is the ground floor (one-line errors, atomic writes, file modes, device probing),
``models`` the reference network and its file formats, ``export`` the compiler, the runtime the rest
of ``gvrcli`` (inference, media, farm, quality, the batch, the Python API, progress) and the CLI the
thin Typer layer (``CLI``). A module may import its own floor and the floors below it, never one
above (docs/architecture.md says why). Every ``import`` statement counts, at module level or inside
a function: a lazy import still ties the two modules together. Imports made from strings at run
time (``importlib.import_module``, ``models.__init__``'s lazy names) are not seen here.
"""

from __future__ import annotations

import ast
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("gvrbase", "models", "export", "gvrcli")  # bottom to top

# The CLI floor: the Typer commands and what only they use. Everything else in gvrcli is runtime.
CLI = frozenset({"gvrcli.__main__", "gvrcli.cli", "gvrcli.cli_frame", "gvrcli.cli_help", "gvrcli.cli_values", "gvrcli.export_command", "gvrcli.trial_command"})
FLOOR_NAMES = ("gvrbase", "models", "export", "runtime", "CLI")
# Above every floor: what the packages may never import (dev tools, tests, benchmarks, examples).
ABOVE = frozenset({"tools", "tests", "benchmarks", "examples"})
# What the ground floor must not pull in: the model and runtime stacks.
HEAVY = frozenset({"torch", "onnx", "onnxruntime", "openvino", "onnxscript", "diffusers", "nncf", "einops"})

# Import circles inside the runtime that live in files other branches are splitting now (issue 28):
# each must be gone once its split lands, and then its line goes too (a waiver whose circle is gone
# fails below, so none outlives its circle).
WAIVED_CYCLES: dict[frozenset, str] = {}  # circles let stand for a while, with the reason (none now)


@dataclass(frozen=True)
class Import:
    importer: str  # module name
    target: str  # the module it names: a gvr module, or a foreign top-level name
    line: int

    def where(self) -> str:
        return f"{module_path(self.importer)}:{self.line}"


def module_path(name: str) -> str:
    path = ROOT / Path(*name.split("."))
    return str((path / "__init__.py" if path.is_dir() else path.with_suffix(".py")).relative_to(ROOT))


def find_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _resolve(dotted: str, modules) -> str:
    """The longest prefix of ``dotted`` that is a gvr module, else its top-level name."""
    parts = dotted.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in modules:
            return ".".join(parts[:n])
    return parts[0]


def imports_of(name: str, path: Path, modules) -> list[Import]:
    found = []
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [Import(name, _resolve(a.name, modules), node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the importer's package, up level - 1
                package = name.split(".") if is_package else name.split(".")[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join(package + ([base] if base else []))
            for alias in node.names:  # ``from pkg import module`` imports that module
                found.append(Import(name, _resolve(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base, modules), node.lineno))
    return found


def floor(module: str) -> int:
    top = module.split(".")[0]
    if top == "gvrcli":
        return FLOOR_NAMES.index("CLI" if module in CLI else "runtime")
    return FLOOR_NAMES.index(top)


def is_gvr(target: str) -> bool:
    return target.split(".")[0] in PACKAGES


def upward(imports: list[Import]) -> list[str]:
    """Each import that points up a floor, or above every floor, as a line for the report."""
    bad = []
    for i in imports:
        if i.target.split(".")[0] in ABOVE:
            bad.append(f"{i.where()}: {i.importer} imports {i.target}, which is above every floor")
        elif is_gvr(i.target) and floor(i.target) > floor(i.importer):
            bad.append(
                f"{i.where()}: {i.importer} ({FLOOR_NAMES[floor(i.importer)]}) imports {i.target} ({FLOOR_NAMES[floor(i.target)]})"
            )
    return bad


def cycles(imports: list[Import]) -> dict[frozenset, str]:
    """The import circles among gvr's modules: each strongly connected component of more than one
    module, with one circle through it spelled out (module, file:line of the import, next module)."""
    edges: dict[str, dict[str, Import]] = {}
    for i in imports:
        if is_gvr(i.target) and i.target != i.importer:
            edges.setdefault(i.importer, {}).setdefault(i.target, i)
    nodes = sorted(set(edges) | {t for out in edges.values() for t in out})
    # Tarjan's strongly connected components, iteratively (no recursion limit to meet).
    index, low, on_stack, stack, components = {}, {}, set(), [], []
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, {}))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            w = next(children, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(edges.get(w, {})))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                component = set()
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    component.add(w)
                    if w == v:
                        break
                if len(component) > 1:
                    components.append(frozenset(component))
    return {c: _spell(c, edges) for c in components}


def _spell(component: frozenset, edges) -> str:
    """The shortest circle through the component's first module, import by import."""
    start = min(component)
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        v = queue.popleft()
        for w in sorted(edges.get(v, {})):
            if w not in component or w in came_from:
                continue
            came_from[w] = v
            if w == start:
                queue.clear()
                break
            queue.append(w)
    path, v = [start], start
    while True:
        v = came_from[v]
        path.append(v)
        if v == start:
            break
    path.reverse()
    return " -> ".join(f"{a} ({edges[a][b].where()})" for a, b in zip(path, path[1:])) + f" -> {start}"


@pytest.fixture(scope="module")
def imports() -> list[Import]:
    modules = find_modules()
    return [i for name, path in modules.items() for i in imports_of(name, path, modules)]


def test_the_reading_sees_the_tree(imports):
    """Not vacuous: the modules are found, and imports of each kind resolve to the module named."""
    modules = find_modules()
    assert CLI <= set(modules), f"CLI names modules that do not exist: {sorted(CLI - set(modules))}"
    assert {p.split(".")[0] for p in modules} == set(PACKAGES) and len(modules) > 80
    seen = {(i.importer, i.target) for i in imports}
    assert ("export.outputs", "gvrbase.atomic") in seen  # from gvrbase import atomic
    assert ("gvrcli.inference.backends", "gvrbase.devices") in seen  # from gvrbase.devices import gpu_present
    assert ("gvrcli.cli", "gvrcli.export_command") in seen  # inside a function
    assert ("models.checkpoint", "torch") in seen  # a foreign package, by its top-level name


def test_every_import_points_down(imports):
    bad = upward(imports)
    assert not bad, "imports pointing up a floor (gvrbase <- models <- export <- runtime <- CLI):\n" + "\n".join(bad)


def test_no_import_circles(imports):
    found = cycles(imports)
    unwaived = [spelled for c, spelled in found.items() if c not in WAIVED_CYCLES]
    assert not unwaived, "import circles among gvr's modules:\n" + "\n".join(unwaived)
    stale = [f"{sorted(c)} ({why})" for c, why in WAIVED_CYCLES.items() if c not in found]
    assert not stale, "waived circles that are gone (remove them from WAIVED_CYCLES):\n" + "\n".join(stale)


def test_the_ground_floor_stands_alone(imports):
    ground = [i for i in imports if i.importer.split(".")[0] == "gvrbase"]
    assert ground, "gvrbase has imports to check"
    bad = [
        f"{i.where()}: {i.importer} imports {i.target}"
        for i in ground
        if (is_gvr(i.target) and i.target.split(".")[0] != "gvrbase") or i.target.split(".")[0] in HEAVY | ABOVE
    ]
    assert not bad, "gvrbase imports nothing from gvr's other packages and nothing heavy:\n" + "\n".join(bad)
