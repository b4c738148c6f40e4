"""Modifying integrators on the MLP problem: distance to the gradient flow after 100 steps.

Gradient descent fed with the order-N modifying integrator's oracle follows the
gradient flow of E with local error O(h^(N+2)), so after K steps (time K h) the
distance to the flow should fall by about a power of h per order. Prints the table
for h = 0.05 and 0.025 and the fitted slope of each row in h (global error O(h^(N+1))).

    python benchmarks/modifying.py
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)

import bea  # noqa: E402
import numeric  # noqa: E402
from numeric._lower._flow import fit_slope, integrate  # noqa: E402


def main() -> None:
    problem = numeric.get_problem("mlp")
    theta0 = jax.tree_util.tree_map(jnp.asarray, problem.state0)

    def loss(w):
        return problem.loss(w, 0, 1)

    flat0, unravel = jax.flatten_util.ravel_pytree(theta0)
    k = 100
    hs = (0.05, 0.025)
    print(f"mlp, {flat0.size} parameters, {k} steps; distance to the gradient flow at t = {k}h")
    print(f"{'order':>5}  " + "  ".join(f"h={h:<8}" for h in hs) + "   slope   seconds")
    for order in (0, 1, 2, 3):
        t0 = time.process_time()
        rule = bea.rules.gd if order == 0 else bea.modifying_integrator(bea.rules.gd, order)
        step = numeric.discrete_map(rule, losses={"E": loss})
        dist = []
        for h in hs:
            y, _ok = integrate(
                lambda z, a: -jax.flatten_util.ravel_pytree(jax.grad(loss)(unravel(z)))[0],
                flat0,
                h * k,
                None,
            )
            end = jax.flatten_util.ravel_pytree(step.iterate(theta0, h, k))[0]
            dist.append(float(np.linalg.norm(end - y)))
        slope, _ = fit_slope(hs, dist)
        cells = "  ".join(f"{d:<10.2e}" for d in dist)
        print(f"{order:>5}  {cells}  {slope:6.2f}  {time.process_time() - t0:7.1f}")


if __name__ == "__main__":
    main()
