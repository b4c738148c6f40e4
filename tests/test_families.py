"""The family registry: the one place that chooses how a rule is derived."""

from __future__ import annotations

import pytest
import sympy as sp

import bea

rho, eps = sp.symbols("rho eps")


def _rmsprop(theta, v, h, grad):
    g = grad("E", theta)
    v = rho * v + (1 - rho) * g * g
    return theta - h * g / bea.ops.sqrt(v + eps), v


@pytest.mark.parametrize(
    ("rule", "family", "basis"),
    [
        (bea.rules.gd, "explicit", "trees"),
        (bea.rules.sgd(3), "explicit", "trees"),
        (bea.rules.heavy_ball, "memory", "trees"),
        (bea.rules.adam, "coordinate", "coordinates"),
        (bea.rules.signgd, "coordinate", "coordinates"),
        (bea.rule(_rmsprop, memory=("v",), family="coordinate"), "coordinate", "coordinates"),
    ],
)
def test_family_of_reads_the_declaration_or_the_memory(rule, family, basis):
    chosen = bea.family_of(rule)
    assert (chosen.name, chosen.basis) == (family, basis)


def test_coordinate_options_choose_the_coordinate_family():
    undeclared = bea.rule(_rmsprop, memory=("v",))
    assert bea.family_of(undeclared).name == "memory"
    assert bea.family_of(undeclared, dimension=2).name == "coordinate"
    assert bea.modified_equation(undeclared, 0, dimension=1).basis == "coordinates"


def test_an_undeclared_coordinate_rule_is_refused_with_a_typed_suggestion():
    undeclared = bea.rule(_rmsprop, memory=("v",))
    with pytest.raises(bea.TraceError, match="dimension=2") as err:
        bea.modified_equation(undeclared, 1)
    assert err.value.suggestion == "coordinate"
    assert "\n" not in str(err.value)


def test_refusals_name_the_family():
    with pytest.raises(bea.BeaValueError, match="declares family='nope'; use one of"):
        bea.family_of(bea.rule(lambda t, h, grad: t, family="nope"))
    explicit = bea.rule(lambda t, h, grad: t - h * grad("E", t), family="explicit")
    with pytest.raises(bea.BeaValueError, match="dimension= is an option of the coordinate"):
        bea.modified_equation(explicit, 1, dimension=2)
    with pytest.raises(bea.BeaValueError, match="coordinate family, which has no B-series"):
        bea.map_series(bea.rules.adam, 1)
    with pytest.raises(bea.BeaTypeError, match="family=3"):
        bea.rule(lambda t, h, grad: t, family=3)
