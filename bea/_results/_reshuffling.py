"""Sampling without replacement: the mean and covariance of a reshuffled SGD epoch.

Random reshuffling visits the n mini-batches E1, …, En once per epoch in a uniformly
random order π. The epoch displacement Δ_π = θ_{epoch} − θ is a B-series over trees
coloured by the batches (`bea.rules.sgd(n)` relabelled by π), so its moments over
the n! orderings are exact sums over trees:

    mean:        E_π[Δ_π]                    (its flow is `bea.sgd_expected`, Smith,
                                               Dherin, Barrett and De, ICLR 2021)
    covariance:  E_π[Δ_π ⊗ Δ_π] − E_π[Δ_π] ⊗ E_π[Δ_π],

the covariance written over unordered pairs of trees {τ₁, τ₂} meaning
sym(F(τ₁) ⊗ F(τ₂)) = ½(F(τ₁)F(τ₂)ᵀ + F(τ₂)F(τ₁)ᵀ). The first-order displacement
−h Σ_i ∇E_i does not depend on the order, and neither does its pairing with the
h² terms, so the covariance starts at h⁴ (Cov_π of Σ_{i before j} ∇²E_j ∇E_i),
against n h² Σ for n draws with replacement (Σ the covariance of the batch
gradients): reshuffling removes the noise of an epoch to two orders in h
(consistent with the faster rates of random reshuffling, Gürbüzbalaban, Ozdaglar
and Parrilo, Math. Program. 2021; Safran and Shamir, COLT 2020).

Example:
    >>> import bea
    >>> epoch = bea.reshuffled_epoch(3, 3)
    >>> epoch.covariance_power
    4
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import sympy as sp

from .._core._errors import BeaValueError, check_integer
from .._core._scalars import H
from .._core._trees import Tree
from .._families._registry import map_series
from .._rules._builtin import sgd
from ._sgd import sgd_expected

__all__ = ["ReshuffledEpoch", "reshuffled_epoch"]


def _relabel(t: Tree, perm: dict[str, str]) -> Tree:
    return Tree(perm[t.root], tuple(_relabel(c, perm) for c in t.children))


@dataclass(frozen=True)
class ReshuffledEpoch:
    """Moments of one reshuffled epoch of n SGD steps (see the module docs).

    Arguments:
        n: the number of mini-batches.
        order: the displacement's moments are kept up to h^(order+1).
        mean: `{(tree, power): coefficient}` of E_π[Δ_π].
        covariance: `{((tree1, tree2), power): coefficient}` of Cov_π[Δ_π] over
            unordered pairs (tree1 <= tree2), each meaning sym(F(tree1) ⊗ F(tree2)).
        domain: the exact domain of the coefficients.
    """

    n: int
    order: int
    mean: dict
    covariance: dict
    domain: object = field(repr=False)

    @property
    def covariance_power(self) -> int | None:
        """The lowest power of h in the covariance (None: zero up to h^(order+1))."""
        return min((p for (_, p), c in self.covariance.items() if c), default=None)

    def expected_flow(self, force: bool = False):
        """The modified equation of the mean epoch map, `bea.sgd_expected(n, order)`."""
        return sgd_expected(self.n, self.order, force=force)

    def covariance_terms(self) -> list[tuple[str, str, int, sp.Expr]]:
        """`(tree1, tree2, power, coefficient)` in bracket notation, lowest power first."""
        rows = [
            (str(a), str(b), p, self.domain.to_sympy(c))
            for ((a, b), p), c in self.covariance.items()
        ]
        return sorted(rows, key=lambda r: (r[2], r[0], r[1]))

    def covariance_at(self, tree1: str, tree2: str) -> sp.Expr:
        """Σ_p c_p h^p of the pair {tree1, tree2}, as SymPy."""
        from .._core._trees import parse_tree

        a, b = sorted((parse_tree(tree1), parse_tree(tree2)))
        return sp.expand(
            sum(
                (
                    self.domain.to_sympy(c) * H**p
                    for ((x, y), p), c in self.covariance.items()
                    if (x, y) == (a, b)
                ),
                sp.Integer(0),
            )
        )


def reshuffled_epoch(n: int, order: int) -> ReshuffledEpoch:
    """The mean and covariance over the n! orderings of one epoch of n SGD steps, up to
    h^(order+1) (see the module docs).

    Arguments:
        n: the number of mini-batches, 2 <= n <= 5 (n! orderings are enumerated).
        order: 0 <= N <= 4; moments up to h^(N+1) (the covariance needs N >= 3 to show).

    Returns:
        A `ReshuffledEpoch`.
    """
    check_integer(n, "n")
    check_integer(order, "order")
    if not 2 <= n <= 5:
        raise BeaValueError(f"n={n} must be between 2 and 5 (the n! orderings are enumerated)")
    if not 0 <= order <= 4:
        raise BeaValueError(
            f"order={order} must be between 0 and 4 (pairs of trees over n! orderings; the "
            "covariance first shows at order 3)"
        )
    series = map_series(sgd(n), order)
    dom = series.domain
    names = [c.label for c in series.colours]
    top = order + 1
    weight = dom.convert(sp.Rational(1, math.factorial(n)))
    mean: dict = {}
    second: dict = {}
    for p in itertools.permutations(names):
        perm = dict(zip(names, p, strict=True))
        terms = [(_relabel(t, perm), k, a) for t, k, a in series.terms]
        for t, k, a in terms:
            mean[(t, k)] = mean.get((t, k), dom.zero) + a * weight
        # invariant: second holds E_π[Δ ⊗ Δ] over unordered pairs, both orders summed
        for (t1, k1, a1), (t2, k2, a2) in itertools.product(terms, repeat=2):
            if k1 + k2 <= top:
                key = (tuple(sorted((t1, t2))), k1 + k2)
                second[key] = second.get(key, dom.zero) + a1 * a2 * weight
    cov = dict(second)
    for (t1, k1), a1 in mean.items():
        for (t2, k2), a2 in mean.items():
            if k1 + k2 <= top:
                key = (tuple(sorted((t1, t2))), k1 + k2)
                cov[key] = cov.get(key, dom.zero) - a1 * a2
    return ReshuffledEpoch(
        n,
        order,
        {k: v for k, v in mean.items() if v},
        {k: v for k, v in cov.items() if v},
        dom,
    )
