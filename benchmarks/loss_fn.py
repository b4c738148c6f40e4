"""Cost of differentiating a modified loss, against the modified field it generates.

`-rate * jax.grad(numeric.loss_fn(loss).apply)` is the block's modified field, so the
two routes compute the same vector; the loss route traces nested jvps inside a
gradient. Each elementary differential F(t) is built once per evaluation (the terms
of a modified loss share their subtrees). Prints, for gradient descent at orders 1-3
and SGD over 3 examples at order 2 with held-fixed terms (the split of Smith et al.,
ICLR 2021), on a 3-parameter quartic in float64:

* first call of the jit-compiled gradient (trace and compile) and of the field;
* the fastest of 50 later calls of each.

    .venv/bin/python benchmarks/loss_fn.py
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import sympy as sp

import bea
import numeric

jax.config.update("jax_enable_x64", True)

H = 0.07
STATE = jnp.array([0.3, -0.8, 1.1])


def quartic(x):
    return jnp.sum(x**4) / 4 + jnp.sum(jnp.sin(x)) + x[0] * x[1] ** 2


LOSSES = {
    "E1": quartic,
    "E2": lambda x: jnp.sum(jnp.cos(x) * x),
    "E3": lambda x: jnp.sum(x**2) * x[0],
}


def first_and_best(fn, repeats: int = 50) -> tuple[float, float]:
    start = time.perf_counter()
    jax.block_until_ready(fn())
    first = time.perf_counter() - start
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        best = min(best, time.perf_counter() - start)
    return first, best


def main() -> None:
    cases = [(f"gd order {n}", bea.rules.gd, n, {"E": quartic}) for n in (1, 2, 3)]
    cases.append(("sgd(3) order 2, held fixed", bea.rules.sgd(3), 2, LOSSES))
    print(f"{'case':28} {'terms':>5} {'grad of loss: first, best':>28} {'field: first, best':>24}")
    for name, rule, order, losses in cases:
        meq = bea.modified_equation(rule, order)
        loss = bea.modified_loss(meq, held_fixed=True)
        fn = numeric.loss_fn(loss, losses)
        rate = float(loss.rate.subs(sp.Symbol("h"), H))
        grad = jax.jit(jax.grad(lambda s, fn=fn: fn.apply(s, H)))
        field = numeric.vector_field(meq, losses=losses)
        g_first, g_best = first_and_best(lambda grad=grad: grad(STATE))
        f_first, f_best = first_and_best(lambda field=field: field(STATE, H))
        diff = float(jnp.max(jnp.abs(-rate * grad(STATE) - field(STATE, H))))
        print(
            f"{name:28} {len(loss.terms):5d} {g_first:11.2f} s, {g_best * 1e6:7.1f} us"
            f" {f_first:11.2f} s, {f_best * 1e6:6.1f} us   (max |difference| {diff:.1e})"
        )


if __name__ == "__main__":
    main()
