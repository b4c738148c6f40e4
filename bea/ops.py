"""Elementwise operations that run on traced values and on arrays alike.

Coordinate-wise optimisers (RMSProp, Adam, sign descent, clipping, normalised SAM)
use square roots, absolute values, signs, maxima and norms of gradients. These are
outside the algebra of elementary differentials, so `bea.modified_equation` cannot
trace them; `bea.modified_equation` can, coordinate by coordinate. Write
the rule with these functions and the same function runs in both worlds:

- on values traced by `bea.modified_equation` (truncated series in h),
  each operation is expanded exactly (binomial series for `sqrt`, the declared
  region for `abs`, `sign`, `maximum`, `minimum`);
- on JAX arrays it calls `jax.numpy` (already loaded by whoever made the array;
  `bea` never imports JAX), on anything else `numpy`, on SymPy expressions `sympy`.

Example:
    >>> import numpy as np
    >>> from bea import ops
    >>> ops.sqrt(np.array([4.0, 9.0]))
    array([2., 3.])
    >>> ops.norm(np.array([3.0, 4.0]))
    np.float64(5.0)
"""

from __future__ import annotations

import builtins
import sys

import sympy as sp

from ._core._errors import TraceError, user_line

__all__ = ["abs", "maximum", "minimum", "norm", "sign", "sqrt", "sum"]


def _traced(x) -> bool:
    """Whether `x` is a value traced by the coordinate-wise family (it implements the
    operations itself); any other `bea` value is a tree-traced one, which these
    operations leave the algebra of."""
    if hasattr(x, "_bea_coordinate"):
        return True
    if type(x).__module__.startswith("bea."):
        raise TraceError(
            f"bea.ops at {user_line()} is outside the algebra of elementary differentials; "
            "derive the rule per coordinate: bea.modified_equation(rule, N, dimension=2)",
            suggestion="coordinate",
        )
    return False


def _is_jax(x) -> bool:
    return type(x).__module__.startswith(("jax", "jaxlib"))


def _lib(*xs):
    """`jax.numpy` when an argument is a JAX array or tracer, else `numpy` (imported
    here: `bea` itself depends on neither)."""
    if builtins.any(_is_jax(x) for x in xs):
        return sys.modules["jax.numpy"]  # loaded by whoever made the array
    import numpy as np

    return np


def _unstep(x):
    # numeric wraps the learning rate in an object holding its value
    return getattr(x, "value", x) if type(x).__name__ == "Step" else x


def sqrt(x):
    """Elementwise square root (binomial series of the traced value about its h⁰ term)."""
    x = _unstep(x)
    if _traced(x):
        return x.sqrt()
    if isinstance(x, sp.Basic):
        return sp.sqrt(x)
    return _lib(x).sqrt(x)


def abs(x):
    """Elementwise absolute value (traced: `sign(x) * x` on the declared region)."""
    x = _unstep(x)
    if _traced(x):
        return x.abs()
    if isinstance(x, sp.Basic):
        return sp.Abs(x)
    return _lib(x).abs(x)


def sign(x):
    """Elementwise sign (traced: the declared sign of the leading term, ±1)."""
    x = _unstep(x)
    if _traced(x):
        return x.sign()
    if isinstance(x, sp.Basic):
        return sp.sign(x)
    return _lib(x).sign(x)


def maximum(a, b):
    """Elementwise maximum (traced: the argument the declared region chooses)."""
    a, b = _unstep(a), _unstep(b)
    if _traced(a) or _traced(b):
        return (a if _traced(a) else b)._bea_choose("maximum", a, b)
    if isinstance(a, sp.Basic) or isinstance(b, sp.Basic):
        return sp.Max(a, b)
    return _lib(a, b).maximum(a, b)


def minimum(a, b):
    """Elementwise minimum (traced: the argument the declared region chooses)."""
    a, b = _unstep(a), _unstep(b)
    if _traced(a) or _traced(b):
        return (a if _traced(a) else b)._bea_choose("minimum", a, b)
    if isinstance(a, sp.Basic) or isinstance(b, sp.Basic):
        return sp.Min(a, b)
    return _lib(a, b).minimum(a, b)


def sum(x):
    """Sum of all coordinates (a scalar)."""
    x = _unstep(x)
    if _traced(x):
        return x.sum()
    return _lib(x).sum(x)


def norm(x):
    """Euclidean norm over all coordinates, `sqrt(sum(x * x))`."""
    x = _unstep(x)
    if _traced(x):
        return (x * x).sum().sqrt()
    lib = _lib(x)
    return lib.sqrt(lib.sum(x * x))
