"""Concrete mode: modified fields and maps as SymPy expressions for explicit losses.

For a loss (or field) given as SymPy expressions in a few variables, evaluate the
elementary differentials exactly and return the modified field as expressions, and
run the update rule itself on SymPy matrices (the same function that is traced and
run by `numeric`). This is the reference the tree machinery and the JAX kernels
are checked against.

Example:
    >>> import sympy as sp, bea
    >>> x = sp.Symbol("x")
    >>> meq = bea.modified_equation(bea.rules.gd, order=1)
    >>> concrete_field(meq, [x], losses={"E": x**4 / 4})
    Matrix([[-3*h*x**5/2 - x**3]])
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from fractions import Fraction

import sympy as sp

from .._core._errors import BeaTypeError, BeaValueError
from .._core._scalars import H
from .._equation._modified import over_trees
from .._rules._rule import as_rule, call_rule

__all__ = ["concrete_field", "concrete_map", "elementary_differential"]


def _expr(value, what: str) -> sp.Expr:
    """A user expression: SymPy, int or Fraction; strings are never sympified."""
    if isinstance(value, sp.Basic):
        return value
    if isinstance(value, bool) or isinstance(value, str | float | complex):
        raise BeaTypeError(
            f"{what} is {value!r}; give a SymPy expression built from sympy.Symbol objects"
        )
    if isinstance(value, int):
        return sp.Integer(value)
    if isinstance(value, Fraction):
        return sp.Rational(value.numerator, value.denominator)
    raise BeaTypeError(f"{what} is a {type(value).__name__}; give a SymPy expression")


def _blocks_of(variables, n_blocks: int) -> list[list[sp.Symbol]]:
    if n_blocks == 1 and variables and isinstance(variables[0], sp.Symbol):
        return [list(variables)]
    blocks = [list(b) for b in variables]
    if len(blocks) != n_blocks:
        raise BeaValueError(
            f"variables has {len(blocks)} blocks but the rule has {n_blocks}; "
            "give one list of symbols per block"
        )
    return blocks


class _Oracles:
    """Concrete oracle vectors over the full state, one per tree colour."""

    def __init__(self, blocks, block_names, oracles, losses, fields):
        self.blocks = blocks
        self.z = [v for b in blocks for v in b]
        self.offsets = []
        off = 0
        for b in blocks:
            self.offsets.append(off)
            off += len(b)
        self.vectors: dict[str, sp.Matrix] = {}
        for o in oracles:
            bi = block_names.index(o.block)
            if o.kind == "grad":
                if o.name not in (losses or {}):
                    raise BeaValueError(
                        f"losses has no entry {o.name!r}, which the rule's gradient oracle "
                        f"uses; pass losses={{{o.name!r}: expression}}"
                    )
                loss = _expr(losses[o.name], f"losses[{o.name!r}]")
                comps = [sp.diff(loss, v) for v in blocks[bi]]
            else:
                if o.name not in (fields or {}):
                    raise BeaValueError(
                        f"fields has no entry {o.name!r}, which the rule uses; pass "
                        f"fields={{{o.name!r}: [expressions]}}"
                    )
                comps = [_expr(c, f"fields[{o.name!r}]") for c in fields[o.name]]
                if len(comps) != len(blocks[bi]):
                    raise BeaValueError(
                        f"field {o.name!r} has {len(comps)} components but block "
                        f"{o.block!r} has {len(blocks[bi])} variables"
                    )
            full = [sp.Integer(0)] * len(self.z)
            for i, c in enumerate(comps):
                full[self.offsets[bi] + i] = c
            self.vectors[o.colour] = sp.Matrix(full)


def elementary_differential(tree, oracles: _Oracles) -> sp.Matrix:
    """F(tree) as a column of expressions in the full state's variables."""
    z = oracles.z

    @functools.cache
    def F(t) -> sp.Matrix:
        X = oracles.vectors[t.root]
        # X^(m)(y)[v_1, ..., v_m]: directional derivatives along placeholder
        # directions w_j (constants), then w_j := F(child_j)
        subs = {}
        for j, child in enumerate(t.children):
            w = sp.symbols(f"_w{j}_0:{len(z)}")
            X = sum((X.diff(zi) * wi for zi, wi in zip(z, w, strict=True)), sp.zeros(len(z), 1))
            v = F(child)
            subs.update({wi: v[i] for i, wi in enumerate(w)})
        return X.subs(subs, simultaneous=True) if subs else X

    return F(tree)


def concrete_field(
    meq,
    variables: Sequence,
    losses: Mapping[str, sp.Expr] | None = None,
    fields: Mapping[str, Sequence[sp.Expr]] | None = None,
    params: Mapping | None = None,
):
    """The modified field of `meq` for explicit losses/fields, as SymPy matrices.

    Arguments:
        meq: a `ModifiedEquation`.
        variables: the state's symbols, a list (one block) or a list of lists.
        losses: loss name -> expression, for gradient oracles.
        fields: field name -> list of expressions (the block's components).
        params: optional substitutions for the rule's symbols (`{alpha: 1}`).

    Returns:
        A column `Matrix` (one block) or a tuple of them, expanded polynomials in h.
    """
    over_trees(meq, "the concrete field")
    blocks = _blocks_of(variables, len(meq.blocks))
    orc = _Oracles(blocks, meq.blocks, meq.oracles, losses, fields)
    total = sp.zeros(len(orc.z), 1)
    for t, k, c in meq.terms:
        total += meq.domain.to_sympy(c) * H**k * elementary_differential(t, orc)
    if params:
        total = total.subs(params)
    total = total.applyfunc(sp.expand)
    parts = tuple(total[orc.offsets[i] : orc.offsets[i] + len(b), :] for i, b in enumerate(blocks))
    return parts[0] if len(parts) == 1 else parts


def concrete_map(
    rule,
    variables: Sequence,
    losses: Mapping[str, sp.Expr] | None = None,
    fields: Mapping[str, Sequence[sp.Expr]] | None = None,
    *,
    blocks: tuple[str, ...] | None = None,
):
    """Run the update rule itself on SymPy column matrices: the exact map in h.

    The oracles differentiate the given expressions and substitute the point; the
    result is one `Matrix` per block (tuple for several blocks), not expanded.
    """
    r = over_trees(as_rule(rule, blocks=blocks), "the concrete map")
    vblocks = _blocks_of(variables, len(r.blocks))
    z = [v for b in vblocks for v in b]

    def at(point):
        pts = (point,) if len(vblocks) == 1 and isinstance(point, sp.MatrixBase) else point
        vals = [x for p in pts for x in p]
        return dict(zip(z, vals, strict=True))

    def grad(name, point, sample=None):
        if name not in (losses or {}):
            raise BeaValueError(f"losses has no entry {name!r}; pass losses={{{name!r}: expr}}")
        sub = at(point)
        loss = _expr(losses[name], f"losses[{name!r}]")
        outs = [sp.Matrix([sp.diff(loss, v).xreplace(sub) for v in b]) for b in vblocks]
        return outs[0] if len(outs) == 1 else tuple(outs)

    def field(name, point):
        if name not in (fields or {}):
            raise BeaValueError(f"fields has no entry {name!r}; pass fields={{{name!r}: [...]}}")
        sub = at(point)
        return sp.Matrix([_expr(e, f"fields[{name!r}]").xreplace(sub) for e in fields[name]])

    state = tuple(sp.Matrix(b) for b in vblocks)
    out = call_rule(r.update, state[0] if len(state) == 1 else state, H, grad, field)
    return out
