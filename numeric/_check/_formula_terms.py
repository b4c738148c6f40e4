"""A candidate field's powers of h: its order, inferred, and the term that differs.

A modified field of order N is a polynomial of degree N in h at every state. From
values of the candidate at h_j = j h0 (j = 0, 1, ...) at the starting state:

* `infer_degree`: the forward differences Delta^k at 0 equal k! h0^k c_k for a
  polynomial sum_k c_k h^k, so the degree is the last k whose difference is above
  round-off; a candidate that is not a polynomial of degree <= 6 (a principal flow,
  log(1 - hH)/(hH)) gets None, and the caller refuses to guess.
* `coefficients`: c_0, ..., c_D by solving the (D+1) x (D+1) Vandermonde system;
  comparing them with those of the rule's derived field names the first power of h
  at which the candidate differs.

Example:
    >>> import numpy as np
    >>> infer_degree(lambda z, h: z + h * z**2 / 4, np.array([1.0, 2.0]))
    1
    >>> print(infer_degree(lambda z, h: np.log1p(h) * z, np.array([1.0])))
    None
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

__all__ = ["H0", "MAX_DEGREE", "coefficients", "first_difference", "infer_degree"]

MAX_DEGREE = 6
"""The highest degree in h `infer_degree` recognises."""

H0 = 0.1
"""The spacing of the learning rates the candidate is evaluated at."""

_RELATIVE = 1e-9


def _values(fn: Callable, z0, count: int, h0: float) -> np.ndarray | None:
    out = []
    for j in range(count):
        v = np.ravel(np.asarray(fn(z0, j * h0), dtype=float))
        if not np.all(np.isfinite(v)):
            return None
        out.append(v)
    return np.stack(out)


def infer_degree(fn: Callable, z0, h0: float = H0) -> int | None:
    """The degree in h of `fn(z0, h)`, or None when it is no polynomial of degree
    <= `MAX_DEGREE` (or gives NaN or inf for h up to (MAX_DEGREE + 1) h0)."""
    values = _values(fn, z0, MAX_DEGREE + 2, h0)
    if values is None:
        return None
    scale = float(np.max(np.linalg.norm(values, axis=1))) or 1.0
    degree = 0
    diff = values
    for k in range(1, MAX_DEGREE + 2):
        diff = diff[1:] - diff[:-1]
        if np.linalg.norm(diff[0]) > _RELATIVE * 2**k * scale:
            degree = k
    return None if degree >= MAX_DEGREE else degree


def coefficients(fn: Callable, z0, degree: int, h0: float = H0) -> np.ndarray:
    """c_0..c_degree (rows) of a polynomial `fn(z0, h)` = sum_k c_k h^k."""
    values = _values(fn, z0, degree + 1, h0)
    if values is None:
        return np.full((degree + 1, np.size(z0)), np.nan)
    hs = h0 * np.arange(degree + 1)
    return np.linalg.solve(np.vander(hs, increasing=True), values)


def first_difference(cand: np.ndarray, ref: np.ndarray, tol: float = 1e-6):
    """`(k, relative difference)` for the lowest power of h whose coefficient vectors
    differ by more than `tol` relative to the larger of the two (or to the h^0 term
    when both are negligible), else None."""
    size = max(len(cand), len(ref))
    width = cand.shape[1] if cand.ndim == 2 else 0
    pad = lambda a: np.vstack([a, np.zeros((size - len(a), width))])  # noqa: E731
    cand, ref = pad(cand), pad(ref)
    floor = 1e-12 * max(float(np.linalg.norm(ref[0])), 1e-300)
    for k in range(size):
        gap = float(np.linalg.norm(cand[k] - ref[k]))
        scale = max(float(np.linalg.norm(cand[k])), float(np.linalg.norm(ref[k])), floor)
        rel = gap / scale
        if not math.isfinite(rel) or rel > tol:
            return k, rel
    return None
