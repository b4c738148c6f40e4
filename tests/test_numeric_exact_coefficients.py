"""Coefficients are evaluated exactly at the numbers given, then rounded once.

A coefficient of heavy ball's modified field is a rational function of beta with
(beta - 1)^k in its denominator; evaluated in floating point from its expanded form
it cancels as beta -> 1 (16 % off at order 2 and beta = 0.999, before). Substituted as
the exact binary value of the float and rounded once, it is right to float64.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

import bea
import numeric

X = np.array([0.3, -0.7])


def E(x):
    return jnp.sum(x**4) / 4 + jnp.sum(x**2) / 2


def exact_field(meq, beta: float, h: float) -> np.ndarray:
    """The field of `meq` on E at X, in exact arithmetic from the exact beta and h."""
    b, hh = sp.Rational(beta), sp.Rational(h)
    xs = sp.symbols("x0 x1")
    loss = sum(x**4 / 4 + x**2 / 2 for x in xs)
    field = bea.concrete_field(meq, [list(xs)], losses={"E": loss})
    point = {x: sp.Rational(v) for x, v in zip(xs, X, strict=True)}
    values = field.subs({bea.H: hh, sp.Symbol("beta"): b}).subs(point)
    return np.array([float(sp.nsimplify(v)) for v in values], dtype=float)


@pytest.mark.parametrize("rule", [bea.rules.heavy_ball, bea.rules.nesterov])
@pytest.mark.parametrize("beta", [0.99, 0.999])
def test_fields_near_beta_one_agree_with_exact_evaluation(rule, beta):
    meq = bea.modified_equation(rule, 3)
    h = 1e-4
    field = numeric.vector_field(meq, {"E": E}, params={"beta": beta})
    got = np.asarray(field(jnp.asarray(X), h))
    want = exact_field(meq, beta, h)
    np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("rule", [bea.rules.heavy_ball, bea.rules.nesterov])
@pytest.mark.parametrize("beta", [0.99, 0.999])
def test_generated_modules_near_beta_one_agree_with_exact_evaluation(rule, beta):
    # the generated module computes its coefficients in Fractions and rounds once
    # (46 % off at order 3 and beta = 0.99, before)
    meq = bea.modified_equation(rule, 3)
    namespace: dict = {}
    exec(bea.codegen(meq), namespace)  # the module bea wrote, as an import runs it
    field = namespace["make_field"](losses={"E": E}, constants={"beta": beta})
    h = 1e-4
    np.testing.assert_allclose(
        np.asarray(field(jnp.asarray(X), h)), exact_field(meq, beta, h), rtol=1e-12
    )
