"""Schedules numerically: the map of a rule that reads the time against the flow of its
time-dependent modified field.

Reference values: the local error of K = 1 step of an order-N modified equation is
O(h^(N+2)) (Hairer, Lubich and Wanner, *Geometric Numerical Integration*, ch. IX.1),
also for a non-autonomous field read over [t0, t0 + h] (ch. IX with t as a state
variable); the steps below are computed by hand from the rule.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

import bea
import numeric

jax.config.update("jax_enable_x64", True)

u = sp.Function("u")
rho = sp.Symbol("rho")


def gd_scheduled(theta, h, grad, t):
    return theta - h * u(t) * grad("E", theta)


def E(x):
    """A nonconvex loss (a double well in each coordinate, coupled)."""
    return jnp.sum(x**4) / 4 - jnp.sum(x**2) / 2 + 0.3 * x[0] * x[1]


def dE(x):
    return x**3 - x + 0.3 * x[::-1]


LOSSES = {"E": E}
X0 = jnp.array([0.3, -0.7])
SCHEDULES = {
    "warm-up": lambda t: t / (t + 1),  # smooth warm-up towards 1
    "cosine": lambda t: (1 + jnp.cos(jnp.pi * t / 4)) / 2,  # cosine decay over T = 4
}


@pytest.fixture(scope="module")
def meq():
    return bea.modified_equation(gd_scheduled, 3)


def test_the_map_and_the_field_read_the_schedule_at_t():
    warm = SCHEDULES["warm-up"]
    step = numeric.discrete_map(gd_scheduled, LOSSES, params={"u": warm})
    h = 0.1
    one = X0 - h * warm(1.0) * dE(X0)
    assert np.allclose(step(X0, h, 1.0), one, rtol=1e-14, atol=0)
    two = one - h * warm(1.0 + h) * dE(one)  # t advances by h per call
    assert np.allclose(step.iterate(X0, h, 2, 1.0), two, rtol=1e-14, atol=0)
    field = numeric.vector_field(bea.modified_equation(gd_scheduled, 0), LOSSES, params={"u": warm})
    assert np.allclose(field(X0, h, 1.0), -warm(1.0) * dE(X0), rtol=1e-14, atol=0)

    # the schedule read at the midpoint of the step, with a parameter beside it
    def midpoint(theta, h, grad, t):
        return theta - h * (u(t + h / 2) + rho) * grad("E", theta)

    step = numeric.discrete_map(midpoint, LOSSES, params={"u": warm, "rho": 0.25})
    want = X0 - h * (warm(1.0 + h / 2) + 0.25) * dE(X0)
    assert np.allclose(step(X0, h, 1.0), want, rtol=1e-14, atol=0)


@pytest.mark.parametrize(("schedule", "t0"), [("warm-up", 0.5), ("warm-up", 2.0), ("cosine", 1.0)])
def test_local_error_slopes_are_n_plus_2(schedule, t0, meq):
    checks = numeric.check_orders(
        gd_scheduled,
        [1, 2, 3],
        losses=LOSSES,
        state0=X0,
        params={"u": SCHEDULES[schedule]},
        t0=t0,
        meq=meq,
    )
    for n, check in zip((1, 2, 3), checks, strict=True):
        assert check.expected == n + 2
        assert check.passed, check


def test_an_equation_without_the_schedules_derivative_fails(meq):
    # the h^1 term u'(t)/2 grad E dropped: the error falls only as h^2
    bad = meq.with_trees(terms=tuple(x for x in meq.terms if (str(x[0]), x[1]) != ("E", 1)))
    check = numeric.check_order(
        gd_scheduled,
        1,
        losses=LOSSES,
        state0=X0,
        params={"u": SCHEDULES["warm-up"]},
        t0=0.5,
        meq=bad,
    )
    assert not check.passed and abs(check.slope - 2) < 0.25


def test_schedules_refuse_in_one_sentence(meq):
    with pytest.raises(bea.BeaValueError, match="'u'"):
        numeric.vector_field(meq, LOSSES)
    field = numeric.vector_field(meq, LOSSES, params={"u": SCHEDULES["cosine"]})
    with pytest.raises(bea.BeaValueError, match=r"\(state, h, t\)"):
        field(X0, 0.1)
    step = numeric.discrete_map(gd_scheduled, LOSSES, params={"u": SCHEDULES["cosine"]})
    with pytest.raises(bea.BeaValueError, match=r"\(state, h, t\)"):
        step(X0, 0.1)
    with pytest.raises(bea.BeaValueError, match="leave t0 out"):
        numeric.check_order(bea.rules.gd, 1, losses=LOSSES, state0=X0, t0=1.0)


def test_functions_that_take_no_time_refuse_a_schedule(meq):
    with pytest.raises(bea.BeaValueError, match="depends on the time t"):
        numeric.field_function(meq)
    with pytest.raises(bea.BeaTypeError, match="is a function"):
        numeric.loss_fn(
            bea.modified_loss(bea.modified_equation(gd_scheduled, 1)),
            LOSSES,
            params={"u": SCHEDULES["cosine"]},
        )


def test_an_optax_schedule_runs_as_a_function_of_time():
    optax = pytest.importorskip("optax")
    h = 0.1
    schedule = optax.cosine_decay_schedule(h, 40)  # the cosine decay above, in steps
    u_of_t = numeric.from_step_schedule(schedule, h)
    ts = jnp.linspace(0.0, 4.0, 9)
    assert np.allclose(jax.vmap(u_of_t)(ts), SCHEDULES["cosine"](ts), rtol=0, atol=1e-15)
    # the rule's iterates are optax.sgd's with that schedule (step k at time t = k h)
    opt = optax.sgd(schedule)
    p, state = X0, opt.init(X0)
    for _ in range(5):
        updates, state = opt.update(jax.grad(E)(p), state)
        p = optax.apply_updates(p, updates)
    step = numeric.discrete_map(gd_scheduled, LOSSES, params={"u": u_of_t})
    assert np.allclose(step.iterate(X0, h, 5, 0.0), p, rtol=1e-14, atol=0)


@bea.rule(memory=("v",))
def heavy_ball_scheduled(theta, v, h, grad, t):
    v = sp.Rational(1, 2) * v - h * u(t) * grad("E", theta)
    return theta + v, v


def test_heavy_ball_with_a_schedule_from_its_slow_manifold_at_t0():
    # started on the slow manifold M_h(theta, t0), the time-dependent series
    # (numeric.on_manifold(meq, theta, h, ..., t=t0)), then run with its memory
    meq = bea.modified_equation(heavy_ball_scheduled, 2)
    cosine = SCHEDULES["cosine"]
    check = numeric.check_order(
        heavy_ball_scheduled, 2, losses=LOSSES, state0=X0, params={"u": cosine}, t0=3.0, meq=meq
    )
    assert check.expected == 4 and check.passed, check
