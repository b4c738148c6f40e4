"""Explicit Runge-Kutta methods from a Butcher tableau, on a generic field `f`.

    k_i = f(y + h sum_{j<i} a_ij k_j),   y' = y + h sum_i b_i k_i.

These are the textbook test cases of backward error analysis: a method of order p
has no correction term below h^p in its modified equation (Hairer, Lubich and
Wanner, ch. IX.1).
"""

from __future__ import annotations

from collections.abc import Sequence

import sympy as sp

from .._core._errors import BeaValueError
from .._core._scalars import exact_value
from ._rule import Rule

__all__ = ["euler", "heun", "midpoint", "rk4", "runge_kutta"]


def runge_kutta(A: Sequence[Sequence], b: Sequence, name: str = "runge_kutta") -> Rule:
    """The explicit Runge-Kutta rule with Butcher matrix `A` and weights `b`.

    `A` must be strictly lower triangular (explicit); entries are exact numbers or
    symbols. Example: `runge_kutta([[0, 0], [1, 0]], [Rational(1, 2), Rational(1, 2)])`
    is Heun's method.
    """
    s = len(b)
    if len(A) != s or any(len(row) != s for row in A):
        raise BeaValueError(f"Butcher tableau of {name!r}: A must be {s}x{s} to match b")
    A = [[exact_value(A[i][j], f"A[{i}][{j}]") for j in range(s)] for i in range(s)]
    b = [exact_value(b[i], f"b[{i}]") for i in range(s)]
    for i in range(s):
        for j in range(i, s):
            if A[i][j] != 0:
                raise BeaValueError(
                    f"Butcher tableau of {name!r} has A[{i}][{j}] = {A[i][j]}; only explicit "
                    "methods (A strictly lower triangular) can be traced"
                )

    def rk(y, h, field):
        ks = []
        for i in range(s):
            stage = y
            for j in range(i):
                if A[i][j] != 0:
                    stage = stage + A[i][j] * h * ks[j]
            ks.append(field("f", stage))
        out = y
        for i in range(s):
            if b[i] != 0:
                out = out + b[i] * h * ks[i]
        return out

    rk.__name__ = name
    return Rule(
        rk,
        name=name,
        params=(("A", tuple(map(tuple, A))), ("b", tuple(b))),
        factory=lambda A=A, b=b: runge_kutta(A, b, name),
        description=f"explicit Runge-Kutta ({s} stages) on a field f",
    )


_R = sp.Rational
euler = runge_kutta([[0]], [1], "euler")
midpoint = runge_kutta([[0, 0], [_R(1, 2), 0]], [0, 1], "midpoint")
heun = runge_kutta([[0, 0], [1, 0]], [_R(1, 2), _R(1, 2)], "heun")
rk4 = runge_kutta(
    [[0, 0, 0, 0], [_R(1, 2), 0, 0, 0], [0, _R(1, 2), 0, 0], [0, 0, 1, 0]],
    [_R(1, 6), _R(1, 3), _R(1, 3), _R(1, 6)],
    "rk4",
)
