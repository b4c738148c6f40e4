"""Adam's bias correction (Kingma and Ba, ICLR 2015) against optax, in both limits.

    PYTHONPATH=. python benchmarks/bias_correction.py

Fixed β (β₁ = 0.6, β₂ = 0.7, ε = 1/2 inside the root): the distance after K steps
(K h = 0.4) between the iterates and the order-2 bias-free modified flow, started at
θ₀ and at θ₀ + σ (`bea.rules.bias_correction_shift`), for bea's own map without bias
correction and for `optax.adam` (bias-corrected) with `eps=0, eps_root=ε`.

State limit (βⱼ = 1 − cⱼ h, c₁ = 1, c₂ = 2, ε = 0.1): one step of `optax.adam` from
its state after k₀ steps (t₀ = k₀ h = 0.3) against the order-N flow of the joint
state (θ, m, v, p₁, p₂), pⱼ = βⱼ^k₀; ε inside the root (`eps_root`) for N = 1, 2 and
outside (optax's default `eps`, bea's `eps_in_sqrt=False`) for N = 1.

Prints the errors and the fitted log-log slopes (float64, CPU). Measured (CPU, 2 cores):
fixed β, slopes from θ₀ → from θ₀ + σ: 1.018 → 2.037 without bias correction, 2.010 →
3.011 with it (K = 40..320); state limit, bea's map equals optax's to 1e-16, local-error
slopes 2.993 (N = 1) and 3.953 (N = 2) with ε inside the root, 2.996 (N = 1) outside.
The order-2 derivation with ε outside the root is slow (about 25 s, and a large kernel
to compile), so only N = 1 is run there.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import sympy as sp

jax.config.update("jax_enable_x64", True)

import bea  # noqa: E402
import numeric  # noqa: E402
from numeric._check._joint import _lower_orders  # noqa: E402
from numeric._lower._flow import integrate  # noqa: E402


def loss(z):
    return jnp.sum(z**4) / 4 + jnp.sin(z[0] * z[1]) + jnp.sum(z**2) / 2


THETA = jnp.array([0.9, -0.6, 0.5])


def slope(hs, errors) -> float:
    return float(np.polyfit(np.log(hs), np.log(errors), 1)[0])


def optax_run(h, b1, b2, k, eps=0.0, eps_root=0.0):
    opt = optax.adam(h, b1=b1, b2=b2, eps=eps, eps_root=eps_root)
    grad = jax.grad(loss)

    def body(_, carry):
        th, st = carry
        up, st = opt.update(grad(th), st, th)
        return optax.apply_updates(th, up), st

    return jax.lax.fori_loop(0, k, body, (THETA, opt.init(THETA)))


def fixed_beta():
    b1, b2, eps, T = sp.Rational(3, 5), sp.Rational(7, 10), sp.Rational(1, 2), 0.4
    nums = {"beta1": 0.6, "beta2": 0.7, "eps": 0.5}
    field = numeric.vector_field(
        bea.modified_equation(bea.rules.adam_rule(b1, b2, eps), 2), {"E": loss}
    )
    flow = jax.jit(
        lambda z, h: integrate(lambda y, a: field(y, a), z, T, h, rtol=1e-13, atol=1e-15)[0]
    )
    adam = numeric.discrete_map(bea.rules.adam, {"E": loss}, params=nums)
    print("fixed beta: |iterates - flow(T)|, K h = 0.4, order-2 bias-free flow")
    for bc in (False, True):
        shift = bea.rules.bias_correction_shift(b1, b2, eps, bias_correction=bc)
        hs, plain, shifted = [], [], []
        for k in (40, 80, 160, 320):
            h = T / k
            if bc:
                end = optax_run(h, 0.6, 0.7, k, eps_root=0.5)[0]
            else:
                z = (THETA, jnp.zeros(3), jnp.zeros(3))
                for _ in range(k):
                    z = adam(z, h)
                end = z[0]
            sigma = numeric.bias_correction_shift(shift, {"E": loss}, THETA, h)
            hs.append(h)
            plain.append(float(jnp.max(jnp.abs(end - flow(THETA, h)))))
            shifted.append(float(jnp.max(jnp.abs(end - flow(THETA + sigma, h)))))
            print(
                f"  bias_correction={bc!s:5}  h={h:.5f}  from θ0 {plain[-1]:.3e}  "
                f"from θ0+σ {shifted[-1]:.3e}"
            )
        print(
            f"  slopes: from θ0 {slope(hs, plain):.3f}, from θ0+σ {slope(hs, shifted):.3f} "
            f"(σ = O(h^{shift.power}))"
        )


def state_limit(eps_in_sqrt: bool, orders):
    c1, c2, eps, t0 = 1.0, 2.0, 0.1, 0.3
    rule = bea.rules.adam_rule(eps_in_sqrt=eps_in_sqrt, bias_correction=True).state_limit(
        beta1="c1", beta2="c2"
    )
    start = time.perf_counter()
    meq = bea.modified_equation(rule, max(orders))
    print(
        f"state limit, eps_in_sqrt={eps_in_sqrt}: derived to order {max(orders)} in "
        f"{time.perf_counter() - start:.1f} s"
    )
    params = {"c1": c1, "c2": c2, "eps": eps}
    kw = {"eps_root": eps} if eps_in_sqrt else {"eps": eps}
    starts = []
    for k0 in (20, 30, 45, 60):
        h = t0 / k0
        b1, b2 = 1 - c1 * h, 1 - c2 * h
        theta, state = optax_run(h, b1, b2, k0, **kw)
        a = state[0]
        ones = jnp.ones_like(theta)
        z = (theta, a.mu, a.nu, b1**a.count * ones, b2**a.count * ones)
        after = optax_run(h, b1, b2, k0 + 1, **kw)[0]
        ours = numeric.discrete_map(rule, {"E": loss}, params={**params, "h": h})(z)[0]
        starts.append((h, z, after, float(jnp.max(jnp.abs(ours - after)))))
    print(f"  bea's map vs optax.adam, one step: max difference {max(s[3] for s in starts):.1e}")
    for n in orders:
        field = numeric.vector_field(_lower_orders(meq, n), {"E": loss}, params=params)
        flow = jax.jit(
            lambda z, h, f=field: integrate(lambda y, a: f(y, a), z, h, h, rtol=1e-13, atol=1e-16)[
                0
            ]
        )
        hs = [s[0] for s in starts]
        errors = [float(jnp.max(jnp.abs(after - flow(z, h)[0]))) for h, z, after, _ in starts]
        print(
            f"  N={n}: local errors {', '.join(f'{e:.2e}' for e in errors)} at h = "
            f"{', '.join(f'{h:.4f}' for h in hs)}: slope {slope(hs, errors):.3f} "
            f"(expected {n + 2})"
        )


if __name__ == "__main__":
    fixed_beta()
    state_limit(True, (1, 2))
    state_limit(False, (1,))
