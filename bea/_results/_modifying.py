"""Modifying integrators: feed a rule a modified oracle so that it follows a target flow.

For a rule whose modified equation is f + h f_1 + h^2 f_2 + ..., the *modifying
integrator* of order N is the same rule run with every oracle X replaced by a series

    X~ = X + sum_{tau, 2 <= |tau| <= N+1} d(tau) h^(|tau|-1) F(tau)     (root of tau: X)

chosen so that the modified equation of the new rule is the target flow (by default
the rule's own h^0 field, e.g. the gradient flow -grad E for gradient descent) up to
O(h^(N+1)) (Chartier, Hairer and Vilmart, "Numerical integrators based on modified differential
equations", Math. Comp. 76, 2007; BSeries.jl's
`modifying_integrator`). The d are found order by order: a term d h^n F(tau) in the
oracle X changes the modified field at h^n by a_X d F(tau), where a_X is X's
coefficient at h^0 (-1 for gradient descent, alpha for phi's field in alternating
updates); every other effect of it is of higher order. So each order is one
derivation and one division, with exact coefficients.

The result is a `Rule` like any other: `bea.modified_equation` traces it (the
modified oracle is evaluated on B-series), and `numeric.discrete_map` runs it (the
corrections are evaluated by the same Hessian-free kernels as modified fields).

Example:
    >>> import bea
    >>> mi = bea.modifying_integrator(bea.rules.gd, 2)
    >>> [str(t) for t, _, _ in bea.modified_equation(mi, 2).terms]
    ['E']
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .._core._colour import Colour, colour_label
from .._core._errors import BeaTypeError, BeaValueError, check_integer
from .._core._scalars import H, choose_domain
from .._core._trees import Tree, count_trees, parse_tree
from .._equation._modified import ModifiedEquation, modified_equation, over_trees
from .._families._trace import Tracer
from .._rules._rule import Rule, as_rule, call_rule

__all__ = ["MAX_MODIFYING_TREES", "ModifiedOracles", "modifying_integrator"]

MAX_MODIFYING_TREES = 5000
"""The most trees (to order + 1 vertices, in the rule's colours) a modifying integrator
solves for unless `force=True`: each order re-derives the rule fed with series oracles,
about 5 ms a tree (sgd(6) at order 3, 4,068 trees, takes 20 s; sgd(16), 185,488
trees, would take hours)."""


@dataclass(frozen=True)
class ModifiedOracles:
    """The corrections added to each oracle of a modifying integrator.

    Arguments:
        corrections: label -> ((tree, h power, exact SymPy coefficient), ...).
        blocks: the state's blocks.
        colours: the rule's oracles (`Colour`), to evaluate the corrections' trees.
    """

    corrections: tuple[tuple[str, tuple[tuple[Tree, int, sp.Expr], ...]], ...]
    blocks: tuple[str, ...]
    colours: tuple[Colour, ...]

    def of(self, label: str) -> tuple:
        return dict(self.corrections).get(label, ())

    def block_of(self, label: str) -> int:
        return next(self.blocks.index(c.block) for c in self.colours if c.label == label)

    def equation(self, name: str = "modified oracles"):
        """The modified oracles X~ = X + corrections as a `ModifiedEquation`-shaped
        field (each colour's leaf with coefficient 1), e.g. for `bea.codegen`."""
        terms = [(Tree(c.label), 0, sp.Integer(1)) for c in self.colours]
        terms += [t for _, ts in self.corrections for t in ts]
        symbols = set().union(*(sp.sympify(c).free_symbols for _, _, c in terms))
        fractions = any(sp.fraction(sp.together(c))[1].free_symbols for _, _, c in terms)
        domain = choose_domain(symbols, fractions)
        return ModifiedEquation.of_trees(
            rule=name,
            order=max(k for _, k, _ in terms),
            time=H,
            blocks=self.blocks,
            oracles=self.colours,
            terms=tuple(
                sorted(
                    ((t, k, domain.from_sympy(c)) for t, k, c in terms),
                    key=lambda x: (x[1], x[0]._key),
                )
            ),
            domain=domain,
        )


def _evaluate(oracle, terms: tuple, point, h, block: int, colours):
    """sum c h^k F(tau)(point) in whichever world runs the rule (tracer or numeric)."""
    owner = getattr(oracle, "__self__", None)
    if isinstance(owner, Tracer):
        d = owner.domain
        for _, _, c in terms:  # the domain must hold the corrections' coefficients
            owner.record.setdefault("symbols", set()).update(sp.sympify(c).free_symbols)
            if sp.fraction(sp.together(c))[1].free_symbols:
                owner.record["fractions"] = True
        table = {(t, k): d.from_sympy(c) for t, k, c in terms}
        return owner.evaluate(table, point, block)
    series = getattr(oracle, "series", None)
    if series is None:
        raise BeaTypeError(
            "this run of a modifying integrator cannot evaluate elementary differentials; "
            "run it with bea.modified_equation or numeric.discrete_map"
        )
    return series(terms, point, h, block, colours)


def _modified_update(update, corrections: ModifiedOracles):
    blocks, colours = corrections.blocks, corrections.colours
    n = len(blocks)

    def modified(state, *rest, grad=None, field=None):
        *memory, h = rest

        def grad_tilde(name, point, sample=None):
            base = grad(name, point)
            parts = list(base) if n > 1 else [base]
            for b, block in enumerate(blocks):
                extra = corrections.of(colour_label(name, "grad", block, n))
                if extra:
                    parts[b] = parts[b] + _evaluate(grad, extra, point, h, b, colours)
            return tuple(parts) if n > 1 else parts[0]

        def field_tilde(name, point):
            base = field(name, point)
            extra = corrections.of(name)
            if not extra:
                return base
            b = corrections.block_of(name)
            return base + _evaluate(field, extra, point, h, b, colours)

        return call_rule(update, state, h, grad_tilde, field_tilde, memory)

    return modified


def modifying_integrator(rule, order: int, *, target=None, force: bool = False) -> Rule:
    """The rule fed with modified oracles so that its modified equation is `target` to
    O(h^(order+1)) (see the module docs).

    Arguments:
        rule: a `bea.Rule` or update function.
        order: N >= 1.
        target: a `bea.ModifiedEquation` (or anything with `terms` in the rule's
            colours) whose h^0 part equals the rule's; default: the rule's h^0 field
            (gradient descent: the gradient flow -grad E).
        force: solve even for more than `MAX_MODIFYING_TREES` trees.

    Returns:
        A `Rule` named `<rule>_modifying_<N>`, traceable and runnable like any rule.
    """
    r = over_trees(as_rule(rule), "a modifying integrator")
    check_integer(order, "order", 1)
    base = modified_equation(r, 0)
    n_trees = count_trees(order + 1, len(base.oracles))
    if n_trees > MAX_MODIFYING_TREES and not force:
        raise BeaValueError(
            f"a modifying integrator of rule {r.name!r} at order={order} solves for "
            f"{n_trees} trees in {len(base.oracles)} colours, above the budget of "
            f"{MAX_MODIFYING_TREES}; lower the order, or pass force=True"
        )
    a = {}
    for t, k, c in base.terms:
        if not t.children and k == 0:
            a[t.root] = base.domain.to_sympy(c)
    want: dict[tuple[Tree, int], sp.Expr] = {}
    if target is not None:
        if not hasattr(target, "terms") or not hasattr(target, "domain"):
            raise BeaTypeError(
                f"target={target!r} is not a modified equation; pass "
                "bea.modified_equation(...) or leave it out for the rule's h^0 flow"
            )
        for t, k, c in target.terms:
            want[(parse_tree(t), k)] = target.domain.to_sympy(c)
        for t, _, c in base.terms:
            if sp.simplify(want.get((t, 0), 0) - base.domain.to_sympy(c)) != 0:
                raise BeaValueError(
                    f"target differs from rule {r.name!r} at h^0 (tree {t}); a modifying "
                    "integrator changes only the h^1, h^2, ... terms"
                )
    current: dict[str, dict[Tree, sp.Expr]] = {}

    def build(corr: dict) -> Rule:
        mo = ModifiedOracles(
            tuple(
                (label, tuple((t, t.order - 1, c) for t, c in sorted(d.items()) if c != 0))
                for label, d in sorted(corr.items())
            ),
            r.blocks,
            base.oracles,
        )
        return Rule(
            _modified_update(r.update, mo),
            name=f"{r.name}_modifying_{order}",
            time=r.time,
            blocks=r.blocks,
            params=r.params,
            description=f"{r.name} with oracles modified to follow its target flow to h^{order}",
            player_times=r.player_times,
            memory=r.memory,
            corrections=mo,
        )

    for n in range(1, order + 1):
        # invariant: the corrections are final for every power below n
        meq = modified_equation(build(current), n)
        for t, k, c in meq.terms:
            if k != n:
                continue
            residual = sp.cancel(meq.domain.to_sympy(c) - want.get((t, k), 0))
            if residual != 0:
                d = current.setdefault(t.root, {})
                d[t] = sp.cancel(d.get(t, 0) - residual / a[t.root])
        for (t, k), c in want.items():  # target terms the rule lacks entirely
            if k == n and not any(tt == t and kk == k for tt, kk, _ in meq.terms) and c != 0:
                d = current.setdefault(t.root, {})
                d[t] = sp.cancel(d.get(t, 0) + c / a[t.root])
    return build(current)
