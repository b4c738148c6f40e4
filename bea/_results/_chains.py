"""Chain trees: the part of a modified field a quadratic loss sees.

On E = ½ θᵀHθ every elementary differential but the chains E[E[…[E]]] vanishes, and a
chain with k+1 vertices is (hH)^k ∇E up to its coefficient; summed over the chains
the field is a function of z = hλ on each eigenvector (Rosca, Wu, Qin and Dherin,
"On a continuous time model of gradient descent dynamics and instability in deep
learning", TMLR 2023). The principal flows of one-step rules and of rules with
memory both start from these sums.
"""

from __future__ import annotations

import sympy as sp

from .._core._errors import BeaValueError
from .._equation._modified import ModifiedEquation

__all__ = ["Z", "chain_coefficients"]

Z = sp.Symbol("z")
"""The scaled eigenvalue z = h lambda (gradient oracles) or z = h mu (field oracles)."""


def _is_chain(tree) -> bool:
    while tree.children:
        if len(tree.children) != 1:
            return False
        tree = tree.children[0]
    return True


def chain_coefficients(meq: ModifiedEquation) -> tuple[sp.Expr, ...]:
    """S_0, ..., S_N: the summed coefficients of the chain trees, by number of edges.

    Arguments:
        meq: a modified equation of a one-block rule.

    Returns:
        S_k = sum of the coefficients of the chain trees with k+1 vertices (all
        colourings), so that on a quadratic the chain terms are sum_k S_k (hH)^k g.
        Raises `BeaValueError` when a coefficient depends on h separately from z.

    Example:
        >>> import bea
        >>> chain_coefficients(bea.modified_equation(bea.rules.gd, 3))
        (-1, -1/2, -1/3, -1/4)
    """
    sums = [sp.Integer(0)] * (meq.order + 1)
    for t, k, c in meq.terms:
        if not _is_chain(t):
            continue
        if k != t.order - 1:
            raise BeaValueError(
                f"rule {meq.rule!r} scales an oracle by a power of h other than one per "
                "call, so its chain terms are not a function of z = h*lambda alone; "
                "use a rule whose steps are h times an oracle value"
            )
        sums[k] += meq.domain.to_sympy(c)
    return tuple(sp.simplify(s) for s in sums)
