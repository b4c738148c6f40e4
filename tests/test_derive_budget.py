"""Memory budget of a derivation: its tree tables live for one call only.

`bea.MAX_TREES` bounds the number of trees a derivation may use; the tables built
from them (`bea._core._trees._Forest`: ids, edge cuts, series coefficients) must be
proportional to that number and dropped when the derivation returns, and the
module-level caches of single-tree functions must stay bounded.
"""

import gc

import pytest
import sympy as sp
from sympy import QQ

import bea
from bea._core._log_exp import log_series
from bea._core._trees import CACHE_SIZE, _Forest, edge_cuts, parse_tree, symmetry, trees_up_to


def _live_forests() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o) is _Forest)


def test_a_derivation_leaves_no_tree_tables_behind():
    before = _live_forests()
    sizes = (edge_cuts.cache_info().currsize, symmetry.cache_info().currsize)
    meq = bea.modified_equation(bea.rules.gd, 8)
    # Hairer, Lubich and Wanner, Geometric Numerical Integration, IX.1, explicit Euler
    # on -grad E, in the oracle convention of bea (vertex E = grad E)
    assert meq.coefficient("E[E[E[E]]]") == sp.Rational(-1, 4)
    assert _live_forests() == before
    # the derivation indexes its own trees; the single-tree caches are not touched
    assert (edge_cuts.cache_info().currsize, symmetry.cache_info().currsize) == sizes
    assert edge_cuts.cache_info().maxsize == symmetry.cache_info().maxsize == CACHE_SIZE


@pytest.mark.parametrize("enabled", [True, False])
def test_the_garbage_collector_state_is_restored(enabled):
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        bea.modified_equation(bea.rules.gd, 4)
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()


def test_trees_built_elsewhere_give_the_same_field():
    # children that are equal but not the very objects of trees_up_to are found by
    # equality instead of identity
    trees = trees_up_to(6, ["f"])
    parsed = [[parse_tree(str(t)) for t in ts] for ts in trees]
    euler = {parse_tree("f"): QQ(1)}
    assert log_series(euler, QQ(1), parsed, QQ) == log_series(euler, QQ(1), trees, QQ)
    # explicit Euler's modified field: f[f] -1/2, f[f[f]] 1/3, f[f,f] 1/12
    # (Hairer, Lubich and Wanner, Geometric Numerical Integration, IX.1, eq. (1.5))
    b = log_series(euler, QQ(1), parsed, QQ)
    assert [b[parse_tree(s)] for s in ("f[f]", "f[f[f]]", "f[f,f]")] == [
        QQ(-1, 2),
        QQ(1, 3),
        QQ(1, 12),
    ]
