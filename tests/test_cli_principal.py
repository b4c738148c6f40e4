"""`bea principal`: a default order that works for every built-in rule, reports in
English, and the symbols z and h reserved.

The principal flow (Rosca et al., TMLR 2023) of gradient descent is log(1 - z)/z,
z = h*lambda, stable for 0 < z < 2; extragradient has R(z) = 1 - z + z^2 (one step
on a quadratic), positive on the whole real axis; simultaneous two-player updates are
stable exactly when both eigenvalues of R lie in the unit disc, the Schur-Cohn
conditions |det R| < 1, |tr R| < 1 + det R (Rosca et al., ICML 2021).
"""

from __future__ import annotations

import pytest
import sympy as sp

import bea
from bea._core._trees import count_trees
from bea.cli import main
from bea.cli._main import DEFAULT_TREES, default_principal_order


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("name", list(bea.rules.RULES))
def test_the_default_order_fits_the_tree_budget_for_every_built_in(name):
    rule = bea.rules.RULES[name]
    order = default_principal_order(rule)
    colours = len(bea.modified_equation(rule, 0).oracles)
    assert order >= 1 and count_trees(order + 1, colours) <= DEFAULT_TREES
    assert order >= (3 if len(rule.blocks) > 1 else 4)


def test_sgd_runs_at_its_default_order(capsys):
    # sgd(2) on a quadratic: R(z) = (1 - z)^2 over time 2h, s(z) = log(1 - z)/z as for gd
    code, out, err = run(capsys, "principal", "sgd")
    assert code == 0, err
    assert "log(1 - z)/z" in out and "(order 6)" in out and "matches the engine: yes" in out


def test_regions_read_as_english(capsys):
    code, out, _ = run(capsys, "principal", "extragradient", "--order", "6")
    assert code == 0
    assert "stable (|R(z)| < 1): for real z in (0, 1)" in out
    assert "oscillating (R(z) < 0, complex flow): never on the real axis" in out
    assert "singular (R(z) = 0, log undefined): nowhere on the real axis" in out
    assert "in nowhere" not in out and "= none" not in out


def test_game_stability_in_words(capsys):
    code, out, _ = run(capsys, "principal", "simultaneous")
    assert code == 0
    assert "Abs(" not in out and "&" not in out
    assert "|det R| < 1  and  |tr R| < 1 + det R" in out
    assert "tr R  = alpha*f_phi*h + g_theta*h*lambda + 2" in out


def test_a_parameter_named_z_is_refused_by_the_library():
    z = sp.Symbol("z")
    with pytest.raises(bea.BeaValueError, match="uses the symbol 'z'"):
        bea.principal_flow(bea.rules.sam.with_params(rho=z), order=2)
    with pytest.raises(bea.BeaValueError, match="uses the symbol 'h'"):
        bea.games.game_principal_flow(bea.rules.simultaneous.with_params(alpha=sp.Symbol("h")), 1)


def test_a_numeric_parameter_still_works(capsys):
    code, out, _ = run(capsys, "principal", "sam", "--param", "rho=1/2", "--order", "6")
    assert code == 0 and "matches the engine: yes" in out and "R(z) = -z**2/2 - z + 1" in out
    assert "at z = -2.73205, 0.732051" in out  # roots -1 -+ sqrt(3)


def test_a_rule_with_memory_gives_its_slow_root(capsys):
    # heavy ball: rho^2 - (1 + beta - z) rho + beta (Qian, Neural Networks 12, 1999)
    code, out, _ = run(capsys, "principal", "heavy_ball", "--order", "3")
    assert code == 0 and "slow root" in out and "chain terms are the slow root's flow: yes" in out
