"""Whether a memory forgets its start: the factors of its update at h = 0.

A rule with memory maps (theta, m) to (theta', m'); at h = 0 this is a linear map J
whose eigenvalue 1 belongs to the state, and whose other eigenvalues are the factors
by which the memory is multiplied per step (beta for heavy ball; rho for RMSProp;
beta1 and beta2 for Adam). The slow manifold exists, and the modified equation in
powers of h describes the iterates, only when every factor lies inside the unit
circle (Hairer, Lubich and Wanner, *Geometric Numerical Integration*, ch. XV.2).
An equation keeps the polynomial whose roots are these factors, so that the check is
made again whenever numbers are bound to its symbols.
"""

from __future__ import annotations

import sympy as sp

from ._errors import BeaValueError

__all__ = ["FACTOR", "factor_polynomial", "refuse_unless_contraction"]

FACTOR = sp.Symbol("lam")
"""The variable of the factor polynomial."""


def factor_polynomial(matrix: sp.Matrix) -> tuple[sp.Expr, ...]:
    """The coefficients (highest degree first) of the characteristic polynomial of
    `matrix`, whose roots are the memory's factors."""
    return tuple(sp.Poly(matrix.charpoly(FACTOR).as_expr(), FACTOR).all_coeffs())


def refuse_unless_contraction(coeffs, rule: str, values: dict | None = None) -> None:
    """Refuse, in one sentence, a memory whose factors are not all inside the unit circle.

    Arguments:
        coeffs: the factor polynomial's coefficients (`factor_polynomial`); empty for
            a rule without memory.
        rule: the rule's name, for the message.
        values: `{Symbol: exact value}` to substitute first. Each irreducible factor
            of the polynomial that is free of symbols then is checked (Adam with
            beta1 = 2 is refused while beta2 is symbolic); the others stay open.

    Example:
        >>> beta = sp.Symbol("beta")
        >>> refuse_unless_contraction((1, -beta), "heavy_ball", {beta: sp.Rational(1, 2)})
        >>> refuse_unless_contraction((1, -beta), "heavy_ball", {beta: 2})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        bea.BeaValueError: rule 'heavy_ball': its memory update multiplies the memory by 2 per...
    """
    if not coeffs:
        return
    poly = [sp.sympify(c).subs(values) if values else sp.sympify(c) for c in coeffs]
    expr = sum((c * FACTOR**k for k, c in enumerate(reversed(poly))), sp.Integer(0))
    # the factors known as numbers are checked even while others are still symbols
    # (Adam with beta1 = 2 and beta2 symbolic)
    known = [f for f, _ in sp.factor_list(expr, FACTOR)[1] if f.free_symbols <= {FACTOR}]
    for f in known:
        p = sp.Poly(f, FACTOR)
        for ev in p.all_roots() if all(c.is_Rational for c in p.all_coeffs()) else p.nroots():
            _refuse_outside(ev, rule)


def _refuse_outside(ev, rule: str) -> None:
    """One sentence when the factor `ev` is not inside the unit circle."""
    if abs(complex(ev)) >= 1:
        shown = ev if ev.is_Rational else f"{complex(ev):.6g}".strip("()")
        raise BeaValueError(
            f"rule {rule!r}: its memory update multiplies the memory by {shown} per "
            "step, which is not a contraction (|factor| >= 1), so the memory has no "
            "slow manifold; use a factor such as |beta| < 1"
        )
