"""Cost of a stochastic modified equation on a network: drift and low-rank diffusion.

The MLP of `benchmarks/kernels.py` (widths 64-320-320-10, tanh, 126,730 parameters,
float32) on a finite sum of 1,024 examples, sampled one example per step. Prints,
relative to one pass of per-example gradients (`jax.vmap(jax.grad)`, the price of
seeing the noise at all), fastest of 15 jit-compiled runs:

* the drift of gd's SME at N = 1 (`numeric.sde(...).drift`: -∇E - h/2 ∇²E∇E, a
  gradient and one Hessian-vector product of the full loss);
* the drift of SAM's SME at N = 1 (adds ρh/2 ∇ tr Σ: per-example Hessian-vector
  products);
* the low-rank diffusion factor R (n × d, RᵀR = hΣ; never d × d).

    .venv/bin/python benchmarks/sde.py
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import kernels
from kernels import WIDTHS

import bea
import numeric

N = 1024
H = 0.01


def make_problem(seed: int = 0):
    """The parameters of `kernels.make_problem`'s MLP, and a finite sum of N examples."""
    params, _ = kernels.make_problem(seed)
    kx, ky = jax.random.split(jax.random.PRNGKey(seed + 1))
    data = (jax.random.normal(kx, (N, WIDTHS[0])), jax.random.normal(ky, (N, WIDTHS[-1])))

    def loss(p, example):
        a, y = example
        for i in range(len(WIDTHS) - 1):
            a = a @ p[f"W{i}"] + p[f"b{i}"]
            if i < len(WIDTHS) - 2:
                a = jnp.tanh(a)
        return 0.5 * jnp.sum((a - y) ** 2)

    return params, numeric.finite_sum(loss, data)


def timed(fn, *args) -> float:
    """The fastest of 15 runs of a jitted function (`kernels.timed`)."""
    return kernels.timed(fn, *args)[1]


def main() -> None:
    params, fs = make_problem()
    d = sum(x.size for x in jax.tree_util.tree_leaves(params))
    base = timed(jax.jit(fs.grads), params)
    gd = numeric.sde(bea.stochastic_modified_equation(bea.rules.gd, 1), {"E": fs})
    sam = numeric.sde(
        bea.stochastic_modified_equation(bea.rules.sam, 1), {"E": fs}, params={"rho": 0.05}
    )
    print(f"MLP {WIDTHS}, {d:,} parameters, {N} examples, {jax.devices()[0].platform}")
    print(f"{'kernel':<44} {'seconds':>9} {'ratio':>7}")
    print(f"{'per-example gradients (baseline)':<44} {base:>9.4f} {1.0:>7.2f}")
    for name, fn in (
        ("gd SME drift, N = 1", lambda p: gd.drift(p, H)),
        ("SAM SME drift, N = 1 (with ∇ tr Σ)", lambda p: sam.drift(p, H)),
        ("diffusion factor R (n × d, RᵀR = hΣ)", lambda p: gd.diffusion_factor(p, H)),
    ):
        t = timed(jax.jit(fn), params)
        print(f"{name:<44} {t:>9.4f} {t / base:>7.2f}")


if __name__ == "__main__":
    main()
