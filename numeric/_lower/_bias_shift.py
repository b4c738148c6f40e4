"""Adam's start-up shift (`bea.rules.bias_correction_shift`) evaluated at a starting point.

The shift's coefficient holds Lambert-type sums over the step index k (no closed
form); each is summed here in float64 until its terms, which decay like βᵏ, are
below `tol` relative to the first.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp
import sympy as sp

from bea import BeaTypeError, BeaValueError

from ._params import bind_params

__all__ = ["bias_correction_shift"]

_MAX_TERMS = 10**7


def _terms(betas, tol: float) -> int:
    """Enough steps k for kβᵏ < tol at the largest decay."""
    top = max(betas, default=0.0)
    if top <= 0.0:
        return 1
    n = math.log(tol) / math.log(top)
    n = math.ceil(n + math.log(max(n, 2.0)) / -math.log(top)) + 1
    if n > _MAX_TERMS:
        raise BeaValueError(
            f"a decay of {top} needs {n} terms of the shift's sums; take beta1, beta2 "
            f"below {1 - 1e-6}"
        )
    return n


def bias_correction_shift(
    shift,
    losses: Mapping[str, Callable],
    theta0,
    h: float,
    params: Mapping | None = None,
    *,
    tol: float = 1e-17,
):
    """σ at θ₀ (an array like `theta0`): the shift of `bea.rules.bias_correction_shift`.

    Arguments:
        shift: a `bea.rules.BiasShift`.
        losses: `{"E": fn}`, the loss whose gradient Adam follows.
        theta0: the starting point (a 1-D array).
        h: the learning rate.
        params: numbers for the shift's symbols (`beta1`, `beta2`, `eps`) left symbolic.
        tol: the sums stop once k βᵏ < tol.

    Example:
        >>> import bea, jax.numpy as jnp
        >>> s = bea.rules.bias_correction_shift(bias_correction=False)
        >>> sigma = bias_correction_shift(s, {"E": lambda x: jnp.sum(x**2) / 2},
        ...     jnp.array([1.0]), 0.01, {"beta1": 0.5, "beta2": 0.0, "eps": 1e6})
        >>> round(float(sigma[0] / (0.01 / jnp.sqrt(1.0 + 1e6))), 12)  # beta1/(1 - beta1) steps
        1.0
    """
    if "E" not in (losses or {}):
        raise BeaValueError("the shift needs the loss's gradient; pass losses={'E': fn}")
    bound = bind_params(params)
    values = {}
    for name, value in shift.params:
        if isinstance(value, sp.Basic) and value.free_symbols:
            if name not in bound:
                raise BeaValueError(
                    f"parameter {name!r} is symbolic; pass params={{{name!r}: ...}}"
                )
            values[name] = float(bound[name])
        else:
            values[name] = float(value)
    unknown = sorted(
        set(bound) - {name for name, v in shift.params if getattr(v, "free_symbols", None)}
    )
    if unknown:
        raise BeaValueError(
            f"params key {unknown[0]!r} is no symbol of the shift; its symbols are beta1, "
            "beta2, eps"
        )
    table = {s: values[s.name] for s in shift.coefficient.free_symbols if s.name in values}
    expr = shift.coefficient.subs(table)
    theta0 = jnp.asarray(theta0, dtype=jnp.float64)
    if theta0.ndim != 1:
        raise BeaTypeError(f"theta0 has shape {theta0.shape}; pass a 1-D array")
    grad = jax.grad(losses["E"])
    eps = values["eps"]
    n = _terms([values["beta1"], values["beta2"]], tol)
    sums = list(expr.atoms(sp.Sum))
    summands = [
        sp.lambdify((s.limits[0][0], shift.g), s.function, modules=[{"Abs": jnp.abs}, jnp])
        for s in sums
    ]
    dummies = [sp.Dummy() for _ in sums]
    outer = sp.lambdify(
        (shift.g, shift.Hu, *dummies),
        expr.xreplace(dict(zip(sums, dummies, strict=True))),
        modules=[{"Abs": jnp.abs}, jnp],
    )

    def evaluate(theta0):
        # one compiled kernel: the gradient, u = D(g, g²), Hu (a Hessian-vector
        # product) and every sum, its terms k = 1..n in one array
        g = grad(theta0)
        u = g / jnp.sqrt(g * g + eps) if shift.eps_in_sqrt else g / (jnp.abs(g) + eps)
        hu = jax.jvp(grad, (theta0,), (u,))[1]
        k = jnp.arange(1, n + 1, dtype=jnp.float64)[:, None]
        totals = [
            jnp.sum(jnp.broadcast_to(f(k, g[None, :]), (n, g.shape[0])), axis=0) for f in summands
        ]
        return jnp.broadcast_to(h**shift.power * outer(g, hu, *totals), theta0.shape)

    return jax.jit(evaluate)(theta0)
