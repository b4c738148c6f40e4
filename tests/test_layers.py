"""The layers: no module imports a later layer, no import cycle, `numeric` on public `bea`.

Every `import` and `from ... import` of every module counts, at module level and
inside functions alike (a function-level import is a dependency all the same; it
only hides a cycle). The layers of `bea`, first to last: `_core` (with `ops`),
`_rules` (with `rules`), `_families`, `_printing`, `_equation`, `_results`,
`_output`, the package itself (with the `backend` namespace), `cli`. Those of
`numeric`: `_lower`, `_run`, `_check`, `_linalg`, `_train`, the package.
"""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

BEA_LAYERS = ("_core", "_rules", "_families", "_printing", "_equation", "_results", "_output")
NUMERIC_LAYERS = ("_lower", "_run", "_check", "_linalg", "_train")
PUBLIC_BEA = {"bea", "bea.ops", "bea.rules", "bea.backend", "bea.trees"}


def _modules(package: str) -> dict[str, pathlib.Path]:
    out = {}
    for path in (ROOT / package).rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = {**_modules("bea"), **_modules("numeric")}


def _imports(module: str, path: pathlib.Path) -> set[str]:
    """The modules of bea and numeric that `module` imports, anywhere in its body."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module
            # `from pkg import sub` imports the submodule where there is one, else pkg
            names = [
                f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in MODULES else prefix
                for a in node.names
            ]
        else:
            continue
        for name in names:
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


GRAPH = {m: _imports(m, p) for m, p in MODULES.items()}


def _layer(module: str) -> tuple[str, int]:
    """(package, rank): the rank of the layer `module` belongs to."""
    parts = module.split(".")
    if parts[0] == "bea":
        if len(parts) > 1 and parts[1] in BEA_LAYERS:
            return "bea", BEA_LAYERS.index(parts[1])
        if len(parts) > 1 and parts[1] == "ops":
            return "bea", 0
        if len(parts) > 1 and parts[1] == "rules":
            return "bea", 1
        if len(parts) > 1 and parts[1] == "cli":
            return "bea", len(BEA_LAYERS) + 1
        return "bea", len(BEA_LAYERS)  # the package and its public namespaces
    if len(parts) > 1 and parts[1] in NUMERIC_LAYERS:
        return "numeric", NUMERIC_LAYERS.index(parts[1])
    return "numeric", len(NUMERIC_LAYERS)


def test_the_graph_sees_the_imports():
    # the test itself: it must see module- and function-level imports, or it asserts nothing
    assert "bea._core._errors" in GRAPH["bea._equation._modified"]
    assert "bea._equation._modified" in GRAPH["bea._results._losses"]
    assert len(GRAPH) > 60


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_a_later_layer(module):
    package, rank = _layer(module)
    later = sorted(m for m in GRAPH[module] if _layer(m)[0] == package and _layer(m)[1] > rank)
    assert not later, f"{module} (layer {rank}) imports the later {later}"


def test_no_import_cycle():
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for n in sorted(GRAPH[m]):
            if state.get(n) == 1:
                cycles.append([*stack[stack.index(n) :], n])
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(GRAPH):
        if m not in state:
            visit(m)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_numeric_imports_only_public_bea():
    private = {
        m: sorted(n for n in deps if n.startswith("bea") and n not in PUBLIC_BEA)
        for m, deps in GRAPH.items()
        if m.startswith("numeric")
    }
    assert not {m: d for m, d in private.items() if d}


def _external(path: pathlib.Path) -> set[str]:
    """The top-level names of every package a module imports."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            out.add(node.module.split(".")[0])
    return out


def test_bea_never_imports_numeric_or_jax_outside_the_cli():
    for m, path in MODULES.items():
        if m.startswith("bea") and not m.startswith("bea.cli"):
            assert not {"numeric", "jax", "jaxlib"} & _external(path), m


def test_import_bea_without_numpy():
    # numpy is not a dependency of bea: a finder that refuses it stands in for its absence
    code = (
        "import sys\n"
        "class NoNumpy:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'numpy' or name.startswith('numpy.'):\n"
        "            raise ImportError('numpy is absent')\n"
        "sys.meta_path.insert(0, NoNumpy())\n"
        "import bea\n"
        "print(bea.modified_equation(bea.rules.adam, 0).basis)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "coordinates"
