"""Rules with memory, numerically: local-error slopes on the slow manifold, the
discrete maps against optax's own momentum iterates, and the manifold against a
burn-in.

Slopes: an order-N modified equation must show local error O(h^(N+2)) (Hairer,
Lubich and Wanner, Geometric Numerical Integration, ch. IX), measured here for the
iterates started on the slow manifold (the state after the start-up transient).
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import bea
import numeric
from numeric._lower._flow import fit_slope, integrate

BETA = 0.5
PARAMS = {"beta": BETA}


def params_of(name):
    """beta for the rules that have one (optimistic has none; an unknown key is refused)."""
    return {} if name == "optimistic" else PARAMS


def E(x):
    return jnp.sum(x**4) / 4 + jnp.sin(x[0]) * x[1]


LOSSES = {"E": E}
THETA0 = jnp.array([0.3, -0.7])


@pytest.fixture(scope="module")
def equations():
    names = ("heavy_ball", "nesterov", "nesterov_optax", "ema_momentum", "optimistic")
    return {n: bea.modified_equation(bea.rules.get_rule(n), 3) for n in names}


@pytest.mark.parametrize(
    "name", ["heavy_ball", "nesterov", "nesterov_optax", "ema_momentum", "optimistic"]
)
def test_local_error_slopes_one_step(equations, name):
    checks = numeric.check_orders(
        bea.rules.get_rule(name),
        [1, 2, 3],
        losses=LOSSES,
        state0=THETA0,
        params=params_of(name),
        meq=equations[name],
    )
    for c in checks:
        # slope N+2 within 0.25 (fitted over the default learning rates)
        assert abs(c.slope - (c.order + 2)) < 0.25, (name, c.order, c.slope)


@pytest.mark.parametrize("name", ["heavy_ball", "optimistic"])
def test_local_error_slopes_many_steps(equations, name):
    # ten calls of the rule with its memory carried along: the memory stays on the
    # manifold, so the error after K steps is K times the local error
    hs = (0.004, 0.002, 0.001)
    checks = numeric.check_orders(
        bea.rules.get_rule(name),
        [1, 2],
        losses=LOSSES,
        state0=THETA0,
        params=params_of(name),
        meq=equations[name],
        steps=10,
        hs=hs,
    )
    for c in checks:
        assert abs(c.slope - (c.order + 2)) < 0.3, (name, c.order, c.slope)


def _optax_iterates(opt, theta, trace, h, steps):
    state = opt.init(theta)
    state = (state[0]._replace(trace=trace), *state[1:])
    for _ in range(steps):
        updates, state = opt.update(jax.grad(E)(theta), state, theta)
        theta = optax.apply_updates(theta, updates)
    return theta, state[0].trace


@pytest.mark.parametrize(("name", "nesterov"), [("heavy_ball", False), ("nesterov_optax", True)])
def test_discrete_map_is_optax_sgd_with_momentum(name, nesterov):
    h = 0.05
    step = numeric.discrete_map(bea.rules.get_rule(name), losses=LOSSES, params=PARAMS)
    m0 = jnp.array([0.2, -0.1])
    # heavy ball keeps the velocity v = -h m; optax keeps the trace m
    mem0 = -h * m0 if name == "heavy_ball" else m0
    ours = step.iterate((THETA0, mem0), h, 7)
    theirs, trace = _optax_iterates(
        optax.sgd(h, momentum=BETA, nesterov=nesterov), THETA0, m0, h, 7
    )
    assert np.allclose(ours[0], theirs, rtol=0, atol=1e-12)
    mem = -h * trace if name == "heavy_ball" else trace
    assert np.allclose(ours[1], mem, rtol=0, atol=1e-12)


# notebooks/04_momentum.ipynb runs the same comparison (one optax.sgd step with
# momentum 0.9, heavy ball and Nesterov, from the slow manifold, against the flows of
# orders 0 to 3) and asserts the same slopes, so this copy is slow
@pytest.mark.slow
@pytest.mark.parametrize(("name", "nesterov"), [("heavy_ball", False), ("nesterov_optax", True)])
def test_slopes_against_optax_iterates(equations, name, nesterov):
    # the derived equation describes the optimiser people run: one optax step from
    # the slow manifold against the modified flow over h
    meq = equations[name]
    hs = (0.02, 0.01, 0.005)
    for order in (1, 2, 3):
        field = numeric.vector_field(
            bea.modified_equation(bea.rules.get_rule(name), order), losses=LOSSES, params=PARAMS
        )
        flow = jax.jit(lambda y, h, field=field: integrate(lambda z, a: field(z, a), y, h, h))
        errors = []
        for h in hs:
            _, mem = numeric.on_manifold(meq, THETA0, h, losses=LOSSES, params=PARAMS)
            trace = -mem / h if name == "heavy_ball" else mem
            theta1, _ = _optax_iterates(
                optax.sgd(h, momentum=BETA, nesterov=nesterov), THETA0, trace, h, 1
            )
            y, ok = flow(THETA0, h)
            assert bool(ok)
            errors.append(float(jnp.linalg.norm(theta1 - y)))
        slope, _ = fit_slope(hs, errors)
        assert abs(slope - (order + 2)) < 0.3, (name, order, slope, errors)


def test_manifold_agrees_with_burn_in(equations):
    # the iterates from zero memory reach the derived manifold: after 40 steps
    # (beta^40 ~ 1e-12) the velocity equals M_h(theta) up to the truncation of the
    # order-3 series, O(h^5)
    hs = (0.005, 0.0025)
    errors = []
    for h in hs:
        state = numeric.burn_in(bea.rules.heavy_ball, THETA0, h, 40, losses=LOSSES, params=PARAMS)
        _, v = numeric.on_manifold(
            equations["heavy_ball"], state[0], h, losses=LOSSES, params=PARAMS
        )
        assert np.allclose(v, state[1], rtol=0, atol=1e-7)
        errors.append(float(jnp.linalg.norm(v - state[1])))
    slope, _ = fit_slope(hs, errors)
    assert slope > 4.3, (errors, slope)


def test_memory_state_must_be_a_tuple():
    step = numeric.discrete_map(bea.rules.heavy_ball, losses=LOSSES, params=PARAMS)
    with pytest.raises(bea.BeaValueError, match=r"\(theta, v\)"):
        step(THETA0, 0.1)


def test_mismatched_equation_and_rule_is_refused(equations):
    with pytest.raises(bea.BeaValueError, match="derived from rule 'nesterov'"):
        numeric.check_order(
            bea.rules.heavy_ball,
            1,
            losses=LOSSES,
            state0=THETA0,
            params=PARAMS,
            meq=equations["nesterov"],
        )


def test_symbolic_coefficient_away_from_h_runs():
    # Lookahead writes alpha * (fast - theta): no h next to the SymPy coefficient
    step = numeric.discrete_map(bea.rules.lookahead, losses=LOSSES, params={"alpha": 0.5})
    gd = numeric.discrete_map(bea.rules.gd, losses=LOSSES)
    fast = gd.iterate(THETA0, 0.1, 2)
    assert np.allclose(step(THETA0, 0.1), THETA0 + 0.5 * (fast - THETA0), rtol=0, atol=1e-15)
