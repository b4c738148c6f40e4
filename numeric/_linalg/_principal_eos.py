"""Edge of stability: the top Hessian eigenvalue against 2/h along gradient descent.

Cohen et al. (ICLR 2021) observed that full-batch gradient descent drives the top
Hessian eigenvalue lambda_0 up to about 2/h and keeps it there. In the principal flow
(Rosca et al., TMLR 2023) this is where the stability coefficient
s(h lambda_0) = log(1 - h lambda_0)/(h lambda_0) acquires a positive real part.
`edge_of_stability` records, every few steps: the loss, lambda_0 (Lanczos on
Hessian-vector products), 2/h, the alignment |grad E . u_0| / |grad E| and
s(h lambda_0). `toy_mlp` builds the small tanh networks used in tests, the notebook
and the benchmark.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from bea import BeaTypeError, BeaValueError

from ._lanczos import hvp, lanczos
from ._principal import (
    _check_finite,
    _check_h,
    _check_scalar_loss,
    _coefficients,
    _flatten,
    rule_polynomial,
)

__all__ = ["EdgeOfStability", "edge_of_stability", "plot_edge_of_stability", "toy_mlp"]


def toy_mlp(
    widths=(2, 16, 1), n_data: int = 32, seed: int = 0, scale: float = 1.0
) -> tuple[Callable, jnp.ndarray]:
    """A tanh MLP regression problem on random data, over a flat parameter vector.

    Arguments:
        widths: layer widths, input first.
        n_data: number of training points (inputs standard normal, targets
            sin of the first input coordinate).
        seed: the `jax.random` seed.
        scale: multiplies the initial weights (larger: sharper loss).

    Returns:
        `(loss, theta0)`: the mean-squared-error loss of a flat vector, and the start.
        The loss is holomorphic (tanh and polynomials), so it can be evaluated at
        complex parameters.
    """
    key = jax.random.PRNGKey(seed)
    kx, key = jax.random.split(key)
    X = jax.random.normal(kx, (n_data, widths[0]))
    Y = jnp.sin(X[:, :1]) * jnp.ones((1, widths[-1]))
    params = []
    for a, b in itertools.pairwise(widths):
        key, kw = jax.random.split(key)
        params.append((scale * jax.random.normal(kw, (a, b)) / jnp.sqrt(a), jnp.zeros(b)))
    theta0, unravel = ravel_pytree(params)

    def loss(theta):
        p = unravel(theta)
        x = X.astype(theta.dtype)
        for i, (W, b) in enumerate(p):
            x = x @ W + b
            if i < len(p) - 1:
                x = jnp.tanh(x)
        return 0.5 * jnp.mean(jnp.sum((x - Y) ** 2, axis=1))

    return loss, theta0


@dataclass(frozen=True)
class EdgeOfStability:
    """A gradient-descent run with its sharpness recorded.

    Arguments:
        h: the learning rate.
        steps: the step numbers recorded.
        loss: E at those steps.
        top_eigenvalue: lambda_0 (Lanczos).
        alignment: |grad E . u_0| / |grad E|.
        coefficient: s(h lambda_0), complex.
    """

    h: float
    steps: np.ndarray
    loss: np.ndarray
    top_eigenvalue: np.ndarray
    alignment: np.ndarray
    coefficient: np.ndarray

    @property
    def threshold(self) -> float:
        """2/h: above it gradient descent diverges along u_0 on a quadratic."""
        return 2.0 / self.h


def edge_of_stability(
    loss: Callable,
    theta0,
    h: float,
    steps: int,
    every: int = 10,
    iters: int = 20,
    seed: int = 0,
) -> EdgeOfStability:
    """Run gd for `steps` steps, recording the sharpness every `every` steps.

    Arguments:
        loss: scalar JAX function of the parameters (a flat vector or any pytree).
        theta0: the start, shaped as `loss` expects.
        h: the learning rate (a finite positive number).
        steps: number of gd steps (>= 0).
        every: record interval (>= 1).
        iters: Lanczos vectors for the top eigenpair (>= 1).
        seed: Lanczos start key.

    Returns:
        An `EdgeOfStability` record; raises `BeaValueError` if the run diverges.

    Example:
        >>> import jax.numpy as jnp
        >>> loss = lambda p: 0.5 * (3.0 * p["a"] ** 2 + p["b"] ** 2)
        >>> rec = edge_of_stability(loss, {"a": 1.0, "b": 1.0}, h=0.1, steps=2, every=1, iters=2)
        >>> rec.top_eigenvalue.round(12).tolist(), rec.threshold
        ([3.0, 3.0, 3.0], 20.0)
    """
    h = _check_h(h)
    for name, v, low in (("steps", steps, 0), ("every", every, 1), ("iters", iters, 1)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer):
            raise BeaTypeError(f"{name}={v!r} must be a whole number")
        if v < low:
            raise BeaValueError(f"{name}={v!r} must be at least {low}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise BeaTypeError(f"seed={seed!r} must be a whole number (a jax.random seed)")
    theta, unflatten = _flatten(theta0, "theta0")
    _check_finite(theta, "theta0")
    flat_loss = loss if unflatten is None else (lambda v: loss(unflatten(v)))
    _check_scalar_loss(flat_loss, theta)
    n = theta.shape[0]
    g = jax.jit(jax.grad(flat_loss))
    poly = rule_polynomial("gd")

    @jax.jit
    def probe(theta):
        vals, vecs = lanczos(
            lambda v: hvp(flat_loss, theta, v),
            n,
            min(iters, n),
            jax.random.PRNGKey(seed),
            theta.dtype,
            keep=1,
        )
        u = vecs[:, -1]
        gt = jax.grad(flat_loss)(theta)
        align = jnp.abs(gt @ u) / (jnp.linalg.norm(gt) + 1e-300)
        return flat_loss(theta), vals[-1], align

    @jax.jit
    def run(theta):
        return jax.lax.fori_loop(0, every, lambda i, t: t - h * g(t), theta)

    rec = []
    for k in range(0, steps + 1, every):
        E, lam, al = probe(theta)
        if not np.isfinite(float(E)):
            raise BeaValueError(
                f"gradient descent diverged before step {k} at h={h}; lower h "
                "(the top eigenvalue passed 2/h)"
            )
        rec.append((k, float(E), float(lam), float(al)))
        if k < steps:
            theta = run(theta)
    steps_a, E, lam, al = (np.array(c) for c in zip(*rec, strict=True))
    coeff = np.asarray(_coefficients(poly, jnp.asarray(h * lam)))
    return EdgeOfStability(h, steps_a.astype(int), E, lam, al, coeff)


def plot_edge_of_stability(record: EdgeOfStability, axes=None):
    """Plot loss, lambda_0 against 2/h, alignment and Re s(h lambda_0); returns the axes."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    ax0, ax1, ax2 = axes
    ax0.semilogy(record.steps, record.loss)
    ax0.set(xlabel="step", ylabel="loss", title="loss")
    ax1.plot(record.steps, record.top_eigenvalue, label=r"$\lambda_0$")
    ax1.axhline(record.threshold, color="k", ls="--", label="2/h")
    ax1.set(xlabel="step", title="sharpness")
    ax1.legend()
    ax2.plot(record.steps, record.alignment, label=r"$|g\cdot u_0|/|g|$")
    ax2.plot(record.steps, record.coefficient.real, label=r"Re $s(h\lambda_0)$")
    ax2.axhline(0, color="k", lw=0.5)
    ax2.set(xlabel="step", title="alignment, stability coefficient")
    ax2.legend()
    return axes
