"""Local-error slopes of RMSProp and Adam on an MLP with more than 1,000 parameters.

The equations are derived once over weighted trees (for every dimension) and lowered
on the network's parameter vector by the elementwise kernel (functions of the gradient
and nested Hessian-vector products, never a Hessian). One step of the rule from the
slow manifold, or from a joint state (θ, m, v) where a memory is kept in the state
(1 − β = c h, `Rule.state_limit`), against the flow of the order-N field over h must
differ by O(h^(N+2)): the fitted slopes should read 3 and 4 (float64, N = 1, 2).

    .venv/bin/python benchmarks/coordinate_mlp.py
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

import bea
import numeric

jax.config.update("jax_enable_x64", True)

WIDTHS = (8, 120, 1)
BATCH = 64


def make_problem(seed: int = 0):
    """A tanh MLP 8-120-1 on a regression of 64 points: 1,201 parameters, flattened."""
    k = jax.random.split(jax.random.PRNGKey(seed), 4)
    x = jax.random.normal(k[0], (BATCH, WIDTHS[0]))
    y = jnp.sin(x[:, :2].sum(1, keepdims=True))
    params = {
        "W1": jax.random.normal(k[1], (WIDTHS[0], WIDTHS[1])) / jnp.sqrt(WIDTHS[0]),
        "b1": jnp.zeros(WIDTHS[1]),
        "W2": jax.random.normal(k[2], (WIDTHS[1], WIDTHS[2])) / jnp.sqrt(WIDTHS[1]),
        "b2": jnp.zeros(WIDTHS[2]),
    }
    flat, unravel = ravel_pytree(params)

    def loss(theta):
        p = unravel(theta)
        out = jnp.tanh(x @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]
        return jnp.mean((out - y) ** 2)

    return loss, flat


HS = (0.001, 0.0015, 0.00225, 0.003375)
"""Learning rates of the fits (the network's curvature over sqrt(eps) sets how small
h must be for the asymptotic slope)."""

CASES = {
    "rmsprop (rho 0.5, eps 0.1)": (bea.rules.rmsprop, {"rho": 0.5, "eps": 0.1}, None),
    "adam (beta1 0.5, beta2 0.6, eps 0.1)": (
        bea.rules.adam,
        {"beta1": 0.5, "beta2": 0.6, "eps": 0.1},
        None,
    ),
    "rmsprop, state limit (1-rho = c h; c 2)": (
        bea.rules.rmsprop.state_limit(rho="c"),
        {"c": 2.0, "eps": 0.1},
        lambda g: (0.8 * g**2,),
    ),
    "adam, state limit (1-beta = c h; c1 1, c2 2)": (
        bea.rules.adam.state_limit(beta1="c1", beta2="c2"),
        {"c1": 1.0, "c2": 2.0, "eps": 0.1},
        lambda g: (0.5 * g, 0.8 * g**2),
    ),
    "adam, optax defaults (beta1 0.9, 1-beta2 = 1e-3)": (
        bea.rules.adam.state_limit(beta2="c2"),
        {"beta1": 0.9, "c2": 1.0, "eps": 0.1},
        lambda g: (g**2,),
    ),
}
"""name -> (rule, params, the state memories' start from the gradient, or None)."""


def main() -> None:
    loss, theta = make_problem()
    print(f"MLP {WIDTHS}: {theta.size} parameters, float64")
    print(f"{'rule':<40} {'N':>2} {'slope':>6} {'expected':>8} {'passed':>6} {'s':>6}")
    g = jax.grad(loss)(theta)
    for name, (rule, params, memory) in CASES.items():
        state0 = theta if memory is None else (theta, *memory(g))
        for n in (1, 2):
            t0 = time.perf_counter()
            res = numeric.check_order(
                rule, n, losses={"E": loss}, state0=state0, params=params, hs=HS
            )
            dt = time.perf_counter() - t0
            print(
                f"{name:<40} {n:>2} {res.slope:>6.2f} {res.expected:>8.0f} "
                f"{res.passed!s:>6} {dt:>6.1f}"
            )
            for note in res.notes:
                print(f"    note: {note}")


if __name__ == "__main__":
    main()
