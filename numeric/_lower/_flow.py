"""Running maps and flows side by side, over a range of learning rates.

The flow of a vector field is integrated with diffrax (Dopri8, an adaptive 8th-order
Runge-Kutta method, relative and absolute tolerances near 1e-13, float64). The map
and the flow are each compiled once with `h` as a traced argument, so a sweep over
learning rates costs one compilation.

A run whose map or flow produces NaN or infinity, or whose integration fails, is
reported for that `h` and dropped; the other runs are kept. A learning rate so large
that T * L > 1, with T the rule's time and L an estimate of the field's Lipschitz
constant, is warned about: the modified series need not converge there.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable, Sequence

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

from bea import BeaTypeError, BeaValueError

from .._lower._static import is_parameter

__all__ = ["NumericWarning", "fit_slope", "float64", "integrate", "lipschitz"]

RTOL = 1e-13
ATOL = 1e-13


class NumericWarning(UserWarning):
    """A numerical check ran, but part of it may mean little (h too large, ...)."""


@contextlib.contextmanager
def float64(notes: list[str] | None = None):
    """Run the enclosed check in float64, enabling it for the duration when it is off."""
    if jax.config.jax_enable_x64:
        yield
        return
    if notes is not None:
        notes.append(
            "float64 was off; enabled for this check only (call "
            "jax.config.update('jax_enable_x64', True) to use it everywhere)"
        )
    with jax.enable_x64(True):
        yield


def as_float64(tree):
    """The floating leaves of a pytree as float64 arrays (others, including leaves
    that are no numbers, unchanged).

    A state made while float64 was off is float32; inside a check it must be promoted,
    or the whole computation silently runs in single precision.
    """

    def cast(a):
        if not is_parameter(a):  # a static leaf: an activation function, a name
            return a
        arr = jnp.asarray(a)
        return arr.astype(jnp.float64) if jnp.issubdtype(arr.dtype, jnp.floating) else a

    return jax.tree_util.tree_map(cast, tree)


def integrate(
    vf: Callable, z0, t1, args, rtol: float = RTOL, atol: float = ATOL, timed: bool = False
):
    """`(y(t1), ok)` for dy/dt = vf(y, args) from y(0) = z0 (diffrax Dopri8); with
    `timed`, dy/ds = vf(y, args, s) (a time-dependent field, s from 0 to t1)."""
    if timed:
        term = diffrax.ODETerm(lambda t, y, a: vf(y, a, t))
    else:
        term = diffrax.ODETerm(lambda t, y, a: vf(y, a))
    sol = diffrax.diffeqsolve(
        term,
        diffrax.Dopri8(),
        t0=0.0,
        t1=t1,
        dt0=t1 / 8,
        y0=z0,
        args=args,
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        max_steps=20_000,
        throw=False,
    )
    ok = sol.result == diffrax.RESULTS.successful
    return jax.tree_util.tree_map(lambda y: y[-1], sol.ys), ok  # the state at t1, any pytree


def lipschitz(step: Callable, z0, t: float, iters: int = 8) -> float:
    """Estimate the Lipschitz constant of the field near `z0` from the map itself.

    `step(z)` is one call of the rule covering time `t`; (step(z) - z) / t is the
    field to leading order, and power iteration on its finite-difference Jacobian
    gives the estimate (cheap: it reuses the compiled map).
    """
    z0 = np.asarray(z0, dtype=float)
    base = (np.asarray(step(z0)) - z0) / t
    v = np.ones_like(z0) / math.sqrt(z0.size)
    eps = 1e-6 * (1.0 + float(np.linalg.norm(z0)))
    norm = 0.0
    for _ in range(iters):
        zp = z0 + eps * v
        w = ((np.asarray(step(zp)) - zp) / t - base) / eps
        norm = float(np.linalg.norm(w))
        if not math.isfinite(norm) or norm == 0.0:
            return norm
        v = w / norm
    return norm


def warn_large_h(t_of_h: Callable[[float], float], hs: Sequence[float], lip: float, what: str):
    """Warn for each h with T(h) * L > 1 (the series may not converge there)."""
    big = [h for h in hs if t_of_h(h) * lip > 1.0]
    if big:
        warnings.warn(
            f"{what}: h = {', '.join(f'{h:.3g}' for h in big)} gives T*L > 1 (field "
            f"Lipschitz estimate L = {lip:.3g}); the modified series may not converge there, "
            "so errors and slopes at these h mean little; use smaller h",
            NumericWarning,
            stacklevel=3,
        )


def fit_slope(hs: Sequence[float], errors: Sequence[float], floor: float = 0.0):
    """Least-squares slope of log(error) against log(h) over finite errors above `floor`.

    Returns `(slope, used)`: the slope (NaN with fewer than two usable points) and the
    indices used.
    """
    used = [i for i, e in enumerate(errors) if math.isfinite(e) and e > floor and hs[i] > 0.0]
    if len(used) < 2:
        return float("nan"), tuple(used)
    x = np.log([hs[i] for i in used])
    y = np.log([errors[i] for i in used])
    slope = float(np.polyfit(x, y, 1)[0])
    return slope, tuple(used)


def check_hs(hs) -> tuple[float, ...]:
    """`hs` as a tuple of distinct positive finite floats, sorted.

    A string, a single number or a nested array is refused, as are NaN, infinity,
    zero and negative learning rates.
    """
    if isinstance(hs, str | bytes) or not hasattr(hs, "__iter__"):
        raise BeaTypeError(
            f"hs={hs!r} must be a sequence of learning rates, e.g. hs=[0.01, 0.02, 0.04]"
        )
    values = []
    for h in hs:
        if isinstance(h, str | bytes | bool) or np.ndim(h) != 0:
            raise BeaTypeError(
                f"hs contains {h!r}, which is not a number; give floats, e.g. hs=[0.01, 0.02]"
            )
        try:
            values.append(float(h))
        except (TypeError, ValueError):
            raise BeaTypeError(f"hs contains {h!r}, which is not a real number") from None
    out = tuple(sorted(set(values)))
    if len(out) < 2 or any(not (h > 0 and math.isfinite(h)) for h in out):
        raise BeaValueError(
            "hs must hold at least two distinct positive finite learning rates; drop NaN, "
            "infinite, zero or negative values"
        )
    return out
