"""The public API: one name per concept, at most 80 of them, used everywhere.

The public names are those in `__all__` of `bea`, `numeric` and of their namespace
modules (`bea.rules`, `bea.ops`, `bea.trees`, `bea.games`, `bea.backend`;
`numeric.principal`, `numeric.drift_adjusted`). Former names still import for one
release, with a `DeprecationWarning` naming the replacement. The README and the
notebooks use public names only.
"""

from __future__ import annotations

import json
import pathlib
import re
import types
import warnings

import pytest

import bea
import numeric

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = {"bea": bea, "numeric": numeric}


def _namespaces(package) -> dict[str, types.ModuleType]:
    return {
        n: getattr(package, n)
        for n in package.__all__
        if isinstance(getattr(package, n), types.ModuleType)
    }


def test_at_most_80_names_besides_the_namespaces():
    counts = {name: len(pkg.__all__) - len(_namespaces(pkg)) for name, pkg in PACKAGES.items()}
    assert sum(counts.values()) <= 80, counts


@pytest.mark.parametrize("name", sorted(PACKAGES))
def test_every_name_in_all_exists_and_is_listed_once(name):
    pkg = PACKAGES[name]
    modules = [pkg, *_namespaces(pkg).values()]
    for module in modules:
        assert len(set(module.__all__)) == len(module.__all__), module.__name__
        missing = [n for n in module.__all__ if not hasattr(module, n)]
        assert not missing, (module.__name__, missing)
        for n in module.__all__:
            assert not n.startswith("coordinate_"), f"{module.__name__}.{n}"


def test_namespaces_do_not_shadow_top_level_names():
    for pkg in PACKAGES.values():
        top = set(pkg.__all__) - set(_namespaces(pkg))
        for ns_name, ns in _namespaces(pkg).items():
            assert ns_name not in top
            # a namespace re-exports; the same object is not also a top-level name
            shared = [n for n in ns.__all__ if n in top and getattr(pkg, n) is getattr(ns, n)]
            assert not shared, (ns_name, shared)


DEPRECATED = {
    "bea": {
        "Oracle": bea.Colour,
        "coordinate_modified_loss": None,
        "MemorySeries": None,
        "Tree": bea.trees.Tree,
        "FreeTree": bea.trees.FreeTree,
        "parse_tree": bea.trees.parse_tree,
        "count_trees": bea.trees.count_trees,
        "symmetry": bea.trees.symmetry,
        "trees_up_to": bea.trees.trees_up_to,
        "modified_jacobian": bea.games.modified_jacobian,
        "comparison_table": bea.games.comparison_table,
        "game_principal_flow": bea.games.game_principal_flow,
        "GamePrincipalFlow": bea.games.GamePrincipalFlow,
    },
    "numeric": {
        "coordinate_check_order": None,
        "coordinate_discrete_map": None,
        "coordinate_elementwise_field": None,
        "coordinate_loss_fn": None,
        "coordinate_vector_field": None,
        "CoordinateOrderCheck": numeric.OrderCheck,
        "CoordinateLossFn": None,
        "ElementwiseField": None,
        "derivative": None,
        "concrete_jax": None,
        **{n: getattr(numeric.principal, n) for n in numeric.principal.__all__},
        **{n: getattr(numeric.drift_adjusted, n) for n in numeric.drift_adjusted.__all__},
    },
}


@pytest.mark.parametrize(
    ("package", "name"), [(p, n) for p, names in DEPRECATED.items() for n in names]
)
def test_former_names_still_work_and_warn(package, name):
    pkg = PACKAGES[package]
    assert name not in pkg.__all__
    with pytest.warns(DeprecationWarning, match=rf"{package}\.{name} is deprecated.*use "):
        value = getattr(pkg, name)
    assert callable(value)
    if DEPRECATED[package][name] is not None:
        assert value is DEPRECATED[package][name]


def test_former_names_import_with_from():
    with pytest.warns(DeprecationWarning, match="numeric.coordinate_vector_field"):
        from numeric import coordinate_vector_field  # noqa: F401
    with pytest.warns(DeprecationWarning, match="bea.trees.Tree"):
        from bea import Tree  # noqa: F401


def test_public_names_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        for pkg in PACKAGES.values():
            for module in [pkg, *_namespaces(pkg).values()]:
                for n in module.__all__:
                    getattr(module, n)


def test_unknown_names_still_raise_attribute_error():
    for pkg in PACKAGES.values():
        with pytest.raises(AttributeError):
            pkg.no_such_name  # noqa: B018


# -- the README and the notebooks use public names only ---------------------------------

ATTRIBUTE = re.compile(r"(?<![\w.])(bea|numeric)((?:\.[A-Za-z_]\w*)+)")


def _public(package: str, path: list[str]) -> bool:
    """Whether `package.path[0].path[1]...` starts with a public name (a name of a
    namespace module must be followed by one of its public names, if by anything)."""
    pkg = PACKAGES[package]
    first = path[0]
    if first not in pkg.__all__:
        return False
    obj = getattr(pkg, first)
    if isinstance(obj, types.ModuleType) and len(path) > 1:
        # bea.rules.NAME in prose stands for any rule
        return path[1] in getattr(obj, "__all__", ()) or path[1] == "NAME"
    return True


def _texts():
    yield "README.md", (ROOT / "README.md").read_text()
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(nb.read_text())["cells"]
        yield nb.name, "\n".join("".join(c["source"]) for c in cells)


@pytest.mark.parametrize(("name", "text"), list(_texts()), ids=lambda v: v[:30])
def test_readme_and_notebooks_use_public_names(name, text):
    bad = sorted(
        {
            m.group(0)
            for m in ATTRIBUTE.finditer(text)
            if m.group(2).split(".")[1:] and not m.group(2).startswith(".cli")
            if not _public(m.group(1), m.group(2).split(".")[1:])
        }
    )
    assert not bad, f"{name} uses names outside the public API: {bad}"


def test_the_scan_sees_names():
    # the test itself: a private or former name in the text is found
    found = [m.group(0) for m in ATTRIBUTE.finditer("x = numeric.coordinate_vector_field(m)")]
    assert found == ["numeric.coordinate_vector_field"]
    assert not _public("numeric", ["coordinate_vector_field"])
    assert not _public("bea", ["trees", "leaf"])
    assert _public("bea", ["trees", "Tree"]) and _public("numeric", ["principal", "lanczos"])


def test_dir_lists_the_current_names_not_the_former_ones():
    for module in (bea, numeric):
        listed = set(dir(module))
        assert set(module.__all__) <= listed
        assert not {name for name in listed if name in module._DEPRECATED}
