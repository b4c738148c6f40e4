"""Local-error slopes of RMSProp and Adam on an MLP with more than 1,000 parameters.

The equations are derived once over weighted trees (for every dimension) and lowered
on the network's parameter vector by the elementwise kernel (functions of the gradient
and nested Hessian-vector products, never a Hessian). One step of the rule from the
slow manifold against the flow of the order-N field over h must differ by O(h^(N+2)):
the fitted slopes should read 3 and 4 (float64, N = 1, 2).

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


CASES = {
    "rmsprop (rho 0.5, eps 0.1)": (bea.rules.rmsprop, {"rho": 0.5, "eps": 0.1}),
    "adam (beta1 0.5, beta2 0.6, eps 0.1)": (
        bea.rules.adam,
        {"beta1": 0.5, "beta2": 0.6, "eps": 0.1},
    ),
}


def main() -> None:
    loss, theta = make_problem()
    print(f"MLP {WIDTHS}: {theta.size} parameters, float64")
    print(f"{'rule':<40} {'N':>2} {'slope':>6} {'expected':>8} {'passed':>6} {'s':>6}")
    for name, (rule, params) in CASES.items():
        for n in (1, 2):
            t0 = time.perf_counter()
            res = numeric.check_order(rule, n, losses={"E": loss}, state0=theta, params=params)
            dt = time.perf_counter() - t0
            print(
                f"{name:<40} {n:>2} {res.slope:>6.2f} {res.expected:>8.0f} "
                f"{res.passed!s:>6} {dt:>6.1f}"
            )
            for note in res.notes:
                print(f"    note: {note}")


if __name__ == "__main__":
    main()
