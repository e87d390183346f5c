"""The package's import graph, read from the source with ``ast``: every
``import`` statement counts, at module level or inside a function (a cycle hidden
in a function-level import still ties two modules together)."""

from __future__ import annotations

import ast
from pathlib import Path

import skdim_dm

PACKAGE = Path(skdim_dm.__file__).parent


def _module_name(path: Path, package: Path) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _targets(node, module: str, is_package: bool, modules) -> set[str]:
    """The package modules one import statement of ``module`` imports."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in modules}
    if node.level:
        here = module.split(".") if is_package else module.split(".")[:-1]
        base = here[: len(here) - (node.level - 1)]
        origin = ".".join(base + ([node.module] if node.module else []))
    else:
        origin = node.module or ""
    found = set()
    for alias in node.names:
        submodule = f"{origin}.{alias.name}"
        if submodule in modules:
            found.add(submodule)
        elif origin in modules:
            found.add(origin)
    return found


def import_graph(package: Path = PACKAGE) -> tuple[dict, dict]:
    """``(edges, external)``: for every module of the package, the package
    modules and the top-level outside packages it imports anywhere in its code.
    Importing ``a.b.c`` also runs ``a`` and ``a.b``; those implicit imports of
    parent packages are not edges (every module would depend on
    ``skdim_dm/__init__.py``)."""
    files = {_module_name(p, package): p for p in package.rglob("*.py")}
    edges, external = {}, {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        deps, outside = set(), set()
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            found = _targets(node, module, is_package, files)
            deps |= found
            if isinstance(node, ast.Import):
                outside |= {
                    a.name.split(".")[0]
                    for a in node.names
                    if not a.name.startswith(package.name)
                }
            elif not node.level and not node.module.startswith(package.name):
                outside.add(node.module.split(".")[0])
        edges[module] = deps - {module}
        external[module] = outside
    return edges, external


def find_cycle(edges: dict) -> list[str] | None:
    """One import cycle ``[a, b, ..., a]``, or ``None``."""
    state, stack = {}, []

    def visit(module):
        state[module] = "open"
        stack.append(module)
        for dep in sorted(edges[module]):
            if state.get(dep) == "open":
                return stack[stack.index(dep) :] + [dep]
            if dep not in state:
                cycle = visit(dep)
                if cycle:
                    return cycle
        stack.pop()
        state[module] = "done"
        return None

    for module in sorted(edges):
        if module not in state:
            cycle = visit(module)
            if cycle:
                return cycle
    return None


def test_the_graph_sees_function_level_and_relative_imports(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("from .sub import b\nimport numpy\n")
    (package / "sub" / "b.py").write_text(
        "def f():\n    from ..c import x\n    from . import d\n"
    )
    (package / "c.py").write_text("import pkg.a\nfrom sklearn.base import clone\n")
    (package / "sub" / "d.py").write_text("")
    edges, external = import_graph(package)
    assert edges["pkg.a"] == {"pkg.sub.b"}
    assert edges["pkg.sub.b"] == {"pkg.c", "pkg.sub.d"}
    assert edges["pkg.c"] == {"pkg.a"}
    assert external["pkg.a"] == {"numpy"} and external["pkg.c"] == {"sklearn"}
    assert find_cycle(edges) == ["pkg.a", "pkg.sub.b", "pkg.c", "pkg.a"]
    (package / "c.py").write_text("")
    assert find_cycle(import_graph(package)[0]) is None


def test_no_module_imports_itself_through_others():
    edges, _ = import_graph()
    assert len(edges) > 20, "the graph missed the package's modules"
    cycle = find_cycle(edges)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def _reachable(edges: dict, start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for dep in edges[todo.pop()]:
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


CORE = f"{PACKAGE.name}._core"


def test_the_core_never_imports_scikit_learn():
    edges, external = import_graph()
    core = sorted(m for m in edges if m == CORE or m.startswith(CORE + "."))
    assert len(core) >= 8, core
    for module in core:
        via = [
            m for m in {module} | _reachable(edges, module) if "sklearn" in external[m]
        ]
        assert not via, f"{module} imports scikit-learn through {sorted(via)}"


def test_the_core_imports_nothing_of_the_package_outside_it():
    edges, _ = import_graph()
    for module, deps in edges.items():
        if module.startswith(CORE):
            outside = sorted(d for d in deps if not d.startswith(CORE))
            assert not outside, f"{module} imports {outside}"
