"""Weak order of a stochastic modified equation, by exact expectations.

On a finite sum whose per-example steps are affine in θ (quadratic per-example
losses under gd, SAM, extragradient, …), the first two moments of the iterates
propagate exactly: with θ' = M_s θ + v_s for example s drawn uniformly,

    m' = E_s[M_s m + v_s],   S' = E_s[M_s S M_sᵀ + M_s m v_sᵀ + v_s mᵀ M_sᵀ + v_s v_sᵀ].

The SDE's moments are exact too when its drift is affine and its diffusion
quadratic (b = Bθ + b₀, D(θ) = D₀ + D₁θ + ½D₂[θ, θ]): by Itô's formula
dm/dt = Bm + b₀ and dS/dt = BS + SBᵀ + b₀mᵀ + mb₀ᵀ + E[D(X)], with
E[D(X)] = D₀ + D₁m + ½ D₂:S, a linear system solved by one matrix exponential.
No Monte Carlo: the errors at a fixed time T fall as h^(N+1) down to round-off
(Li, Tai and E, JMLR 20(40), 2019, Thm 3: weak order N+1).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg

import bea
from bea import BeaValueError

from .._lower._stochastic import SDE, FiniteSum
from .._run._maps import discrete_map
from .._run._memory import on_manifold

__all__ = ["WeakOrderCheck", "check_weak_order"]


@dataclass(frozen=True)
class WeakOrderCheck:
    """Errors of E[θ] and E[θθᵀ] at time T against the discrete map, per h.

    Attributes:
        hs: the learning rates.
        mean_errors, second_moment_errors: max-abs errors at time T.
        mean_slope, second_moment_slope: least-squares slopes of log error on log h.
        expected: N + 1.
        passed: both slopes within 0.3 of `expected`.
    """

    hs: tuple[float, ...]
    mean_errors: tuple[float, ...]
    second_moment_errors: tuple[float, ...]
    mean_slope: float
    second_moment_slope: float
    expected: int
    passed: bool

    def __str__(self) -> str:
        rows = [
            f"weak order check: slopes E[θ] {self.mean_slope:.2f}, E[θθᵀ] "
            f"{self.second_moment_slope:.2f} (expected {self.expected}) — "
            + ("passed" if self.passed else "FAILED")
        ]
        rows += [
            f"  h={h:.4g}  |ΔE[θ]|={a:.3e}  |ΔE[θθᵀ]|={b:.3e}"
            for h, a, b in zip(self.hs, self.mean_errors, self.second_moment_errors, strict=True)
        ]
        return "\n".join(rows)


def _affine(f, d):
    """(A, b, f(probe) − (A probe + b)) for f(θ) = Aθ + b; the last is 0 when f is affine."""
    zero = jnp.zeros(d)
    b = f(zero)
    a = jax.jacfwd(f)(zero)
    probe = jnp.linspace(-1.0, 1.0, d) + 0.3
    return a, b, f(probe) - (a @ probe + b)


def _refuse_unless_small(residual, scale, what: str) -> None:
    if not np.all(np.abs(np.asarray(residual)) <= 1e-9 * (1.0 + np.max(np.abs(np.asarray(scale))))):
        raise BeaValueError(
            f"exact expectations need {what} (quadratic per-example losses); this problem is not"
        )


def _sde_moments(s: SDE, theta0, h):
    """The generator of the moments (1 + d + d² square, its last column the constant
    term) and the residuals of the affine drift and quadratic diffusion."""
    d = theta0.shape[0]

    def drift(x):
        return s.drift(x, h)

    def diff(x):
        return s.diffusion(x, h)

    bmat, b0, drift_residual = _affine(drift, d)
    zero = jnp.zeros(d)
    d0 = diff(zero)
    d1 = jax.jacfwd(diff)(zero)  # (d, d, d)
    d2 = jax.hessian(diff)(zero)  # (d, d, d, d)
    probe = jnp.linspace(-1.0, 1.0, d) + 0.3
    quad = d0 + d1 @ probe + 0.5 * jnp.einsum("ijkl,k,l->ij", d2, probe, probe)

    def rhs(y):
        m, sm = y[:d], y[d:].reshape(d, d)
        dm = bmat @ m + b0
        ed = d0 + d1 @ m + 0.5 * jnp.einsum("ijkl,kl->ij", d2, sm)
        ds = bmat @ sm + sm @ bmat.T + jnp.outer(b0, m) + jnp.outer(m, b0) + ed
        return jnp.concatenate([dm, ds.ravel()])

    n = d + d * d
    y0 = jnp.zeros(n)
    a = jax.jacfwd(rhs)(y0)
    r = rhs(y0)
    big = jnp.zeros((n + 1, n + 1)).at[:n, :n].set(a).at[:n, n].set(r)
    return big, drift_residual, diff(probe) - quad


def _example_steps(rule, fs: FiniteSum, name: str, params, sizes=None):
    """The one-step map of each example, as JAX functions of (z, h); for a rule with
    memory z is the flat joint state (θ, m1, …), `sizes` the sizes of its parts."""

    def example_loss(x):
        return lambda t: fs.loss(t, x)

    maps = [
        discrete_map(rule, {name: example_loss(fs.example(s))}, params=params) for s in range(fs.n)
    ]
    if sizes is None:
        return maps
    cuts = np.cumsum(sizes)[:-1].tolist()

    def flat(step):
        return lambda z, h: jnp.concatenate(step(tuple(jnp.split(z, cuts)), h))

    return [flat(step) for step in maps]


def _start(sme, losses, theta0, params):
    """The start of the map's moments and the sizes of the joint state: θ0 for a rule
    without memory; (θ0, its memory on the slow manifold of the full loss) with it, as
    a function of h (the SME follows the iterates from the slow manifold)."""
    if not sme.source.memory:
        return (lambda h: theta0), None
    meq = bea.modified_equation(sme.source, max(sme.order, 1))

    def start(h):  # the finite sums are callable: their mean loss
        return jnp.concatenate(on_manifold(meq, theta0, h, losses=losses, params=params))

    sizes = [theta0.shape[0]] * (1 + len(sme.source.memory))
    return start, sizes


def _map_moments(steps_of, z0, h, steps: int):
    """E[z_k], E[z_k z_kᵀ] after `steps` steps from z0, and the residual of the affine
    steps (z = θ, or the joint state of a rule with memory)."""
    d = z0.shape[0]
    parts = [_affine(lambda t, step=step: step(t, h), d) for step in steps_of]
    mats = jnp.stack([p[0] for p in parts])
    vecs = jnp.stack([p[1] for p in parts])
    residual = jnp.stack([p[2] for p in parts])

    def one(_, carry):
        m, sm = carry
        m2 = jnp.mean(mats @ m + vecs, axis=0)
        mm = jnp.einsum("sij,j->si", mats, m)
        s2 = jnp.mean(
            jnp.einsum("sij,jk,slk->sil", mats, sm, mats)
            + jnp.einsum("si,sj->sij", mm, vecs)
            + jnp.einsum("si,sj->sij", vecs, mm)
            + jnp.einsum("si,sj->sij", vecs, vecs),
            axis=0,
        )
        return m2, s2

    m, sm = jax.lax.fori_loop(0, steps, one, (z0, jnp.outer(z0, z0)))
    return m, sm, residual


def check_weak_order(sme, losses, theta0, *, t_end=1.0, hs=(0.1, 0.05, 0.025, 0.0125), params=None):
    """The weak errors of `sme` at time `t_end` against its rule, by exact moments
    (see the module docs).

    Arguments:
        sme: a `bea.StochasticModifiedEquation` of a rule with one sampled loss.
        losses: that loss name -> `numeric.finite_sum(loss, data)` with quadratic
            per-example losses.
        theta0: the start (a flat array); a rule with memory starts with its memory on
            the slow manifold of the full loss (`numeric.on_manifold`), as the SME
            assumes, and its joint state's moments are propagated.
        t_end: the fixed time T; each h must divide it into whole steps.
        hs: the learning rates.
        params: values of the rule's parameters.

    Returns:
        A `WeakOrderCheck` with the slopes of the errors of E[θ] and E[θθᵀ].
    """
    if not isinstance(sme, bea.StochasticModifiedEquation):
        raise BeaValueError(f"sme={type(sme).__name__} must be a bea.StochasticModifiedEquation")
    if sme.samples:
        raise BeaValueError(
            f"rule {sme.rule!r} draws independent samples {sme.samples} besides its own; "
            "the exact moments run one example per step (use rules with one draw per step)"
        )
    if sme.source is None:
        raise BeaValueError(
            f"sme of rule {sme.rule!r} was read from JSON and holds no rule to iterate; pass "
            "bea.stochastic_modified_equation(rule, N) of the rule itself"
        )
    s = SDE(sme, losses, params)
    name = sme.sampled[0]
    theta0 = jnp.asarray(theta0, dtype=jnp.float64)
    start, sizes = _start(sme, losses, theta0, params)
    steps_of = _example_steps(sme.source, s.fs, name, params, sizes)
    d = theta0.shape[0]

    def theta_moments(h, k):
        m, sm, residual = _map_moments(steps_of, start(h), h, k)
        return m[:d], sm[:d, :d], residual

    map_moments = jax.jit(theta_moments)
    sde_moments = jax.jit(lambda h: _sde_moments(s, theta0, h))
    errs_m, errs_s = [], []
    for h in hs:
        steps = round(t_end / h)
        if steps < 1 or abs(steps * h - t_end) > 1e-9 * t_end:
            raise BeaValueError(f"h={h} does not divide t_end={t_end} into whole steps")
        m_map, s_map, residual = map_moments(h, steps)
        _refuse_unless_small(residual, m_map, "per-example steps affine in θ")
        big, drift_residual, diff_residual = sde_moments(h)
        # the linear moment system, solved on the host (a small dense exponential)
        start_sde = np.concatenate([theta0, np.outer(theta0, theta0).ravel(), [1.0]])
        y = scipy.linalg.expm(np.asarray(big) * t_end) @ start_sde
        m_sde, s_sde = y[:d], y[d : d + d * d].reshape(d, d)
        _refuse_unless_small(drift_residual, m_sde, "a drift affine in θ")
        _refuse_unless_small(diff_residual, s_sde, "a diffusion quadratic in θ")
        errs_m.append(float(jnp.max(jnp.abs(m_map - m_sde))))
        errs_s.append(float(jnp.max(jnp.abs(s_map - s_sde))))
    lh = np.log(np.asarray(hs))
    slope_m = float(np.polyfit(lh, np.log(errs_m), 1)[0])
    slope_s = float(np.polyfit(lh, np.log(errs_s), 1)[0])
    expected = sme.order + 1
    return WeakOrderCheck(
        tuple(float(h) for h in hs),
        tuple(errs_m),
        tuple(errs_s),
        slope_m,
        slope_s,
        expected,
        abs(slope_m - expected) < 0.3 and abs(slope_s - expected) < 0.3,
    )
