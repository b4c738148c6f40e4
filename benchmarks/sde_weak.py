"""Weak order of the stochastic modified equations on a nonconvex finite sum, by Monte
Carlo with the interval stated.

Problem: two nonconvex per-example losses in one dimension,
ℓ₁(x) = cos 2x + x²/4 and ℓ₂(x) = −sin x / 2 + x²/4 + x/2, one drawn per step (with
replacement), from x₀ = 1 to time T = 0.6. The test function is φ(x) = x².

* SGD side, exact: all 2^k orderings of k = T/h draws enumerated.
* SDE side, Monte Carlo: `numeric.sde` of `bea.stochastic_modified_equation(gd, N)`,
  Euler–Maruyama at dt = h/8 and h/16 on the same Brownian paths, extrapolated
  (2 u(dt/2) − u(dt): weak order 2 in dt), M = 2^20 paths; the 95 % interval is
  ±1.96 times the standard error of the extrapolated estimator.

Prints the weak error |E φ(x_k) − E φ(X_T)| with its interval per h, and the fitted
slope (expected N + 1) with an interval from the extreme slopes the error intervals
allow (between the first and last h).

Heavy ball (β = 1/2) the same way: its iterates enumerated exactly from the memory on
its slow manifold (`numeric.on_manifold`), against `numeric.sde` of
`bea.stochastic_modified_equation(heavy_ball, N)` by Monte Carlo.

    .venv/bin/python benchmarks/sde_weak.py
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

import bea
import numeric

jax.config.update("jax_enable_x64", True)

T, X0, M = 0.6, 1.0, 2**19
HS = {0: (0.3, 0.15, 0.075), 1: (0.3, 0.15, 0.075)}


def loss(x, s):
    x = x[0]
    l1 = jnp.cos(2 * x) + x**2 / 4
    l2 = -jnp.sin(x) / 2 + x**2 / 4 + x / 2
    return jnp.where(s == 0, l1, l2)


def phi(x):
    return x**2


def sgd_exact(h: float) -> float:
    k = round(T / h)
    paths = jnp.arange(2**k)
    x = jnp.full((2**k, 1), X0)
    for step in range(k):
        s = (paths >> step) & 1
        g = jax.vmap(jax.grad(loss))(x, s)
        x = x - h * g
    return float(jnp.mean(phi(x[:, 0])))


BETA = 0.5
HB_HS = (0.15, 0.075, 0.0375)  # heavy ball moves at h/(1 - β): half gd's learning rates


def heavy_ball_exact(h: float, meq, fs) -> float:
    k = round(T / h)
    paths = jnp.arange(2**k)
    x0 = jnp.array([X0])
    _, v0 = numeric.on_manifold(meq, x0, h, losses={"E": fs}, params={"beta": BETA})
    x, v = jnp.tile(x0, (2**k, 1)), jnp.tile(v0, (2**k, 1))
    for step in range(k):
        s = (paths >> step) & 1
        v = BETA * v - h * jax.vmap(jax.grad(loss))(x, s)
        x = x + v
    return float(jnp.mean(phi(x[:, 0])))


def sde_mc(sde, h: float, key) -> tuple[float, float]:
    n_coarse = 8 * round(T / h)
    dt = T / (2 * n_coarse)  # the fine step; the coarse one is 2 dt

    def move(x, w, step):
        b = jax.vmap(lambda y: sde.drift(y[None], h)[0])(x)
        r = jax.vmap(lambda y: sde.diffusion_factor(y[None], h))(x)  # (M, n, 1)
        return x + b * step + jnp.sqrt(jnp.sum(r[:, :, 0] ** 2, axis=1)) * w

    @jax.jit
    def run(key):
        def body(carry, i):
            fine, coarse = carry
            w = jax.random.normal(jax.random.fold_in(key, i), (2, M)) * jnp.sqrt(dt)
            fine = move(move(fine, w[0], dt), w[1], dt)
            coarse = move(coarse, w[0] + w[1], 2 * dt)
            return (fine, coarse), None

        x0 = jnp.full(M, X0)
        return jax.lax.scan(body, (x0, x0), jnp.arange(n_coarse))[0]

    fine, coarse = run(key)
    est = 2 * phi(fine) - phi(coarse)
    return float(jnp.mean(est)), float(jnp.std(est) / np.sqrt(M))


def main() -> None:
    fs = numeric.finite_sum(loss, jnp.arange(2))
    key = jax.random.PRNGKey(0)
    cases = [("gd", order, hs) for order, hs in HS.items()]
    cases += [("heavy_ball", order, HB_HS) for order in (0, 1)]
    for name, order, hs in cases:
        start = time.process_time()
        rule = getattr(bea.rules, name)
        params = {"beta": BETA} if name == "heavy_ball" else None
        sde = numeric.sde(bea.stochastic_modified_equation(rule, order), {"E": fs}, params)
        meq = bea.modified_equation(rule, max(order, 1))
        errs, halfs = [], []
        print(f"{name}, N = {order} (expected slope {order + 1})")
        for h in hs:
            key, sub = jax.random.split(key)
            exact = sgd_exact(h) if name == "gd" else heavy_ball_exact(h, meq, fs)
            mean, se = sde_mc(sde, h, sub)
            err, half = abs(exact - mean), 1.96 * se
            errs.append(err)
            halfs.append(half)
            print(f"  h={h:<6} weak error {err:.3e} ± {half:.1e}")
        lh = np.log(np.array(hs))
        slope = np.polyfit(lh, np.log(errs), 1)[0]
        span = lh[0] - lh[-1]
        lo = (np.log(errs[0] - halfs[0]) - np.log(errs[-1] + halfs[-1])) / span
        hi = (np.log(errs[0] + halfs[0]) - np.log(max(errs[-1] - halfs[-1], 1e-300))) / span
        print(
            f"  slope {slope:.2f} (interval {lo:.2f} .. {hi:.2f}); "
            f"{time.process_time() - start:.0f} s CPU"
        )


if __name__ == "__main__":
    main()
