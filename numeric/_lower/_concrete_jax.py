"""Concrete mode lowered to JAX: `bea.concrete_field` through SymPy's JAX printer.

For a loss or field given as SymPy expressions in a few variables, `bea` computes
the exact modified field as expressions (polynomials in h); `sympy.lambdify` with
`modules="jax"` turns them into a JAX function. It is the independent reference the
tree kernels are tested against.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import jax.numpy as jnp
import sympy as sp

import bea

__all__ = ["concrete_jax"]


def concrete_jax(
    meq,
    variables: Sequence,
    losses: Mapping[str, sp.Expr] | None = None,
    fields: Mapping[str, Sequence[sp.Expr]] | None = None,
    params: Mapping | None = None,
):
    """The exact modified field of `meq` for SymPy losses/fields, as a JAX function.

    Arguments:
        meq: a `bea.ModifiedEquation`.
        variables: the state's symbols (a list, or one list per block).
        losses, fields: as for `bea.concrete_field`.
        params: values of the rule's symbols (keyed by name or Symbol; not h).

    Returns:
        `fn(state, h)`: the state a 1-D array (one block) or a tuple of 1-D arrays,
        the result shaped the same.
    """
    subs = {}
    for key, value in (params or {}).items():
        sym = key if isinstance(key, sp.Symbol) else sp.Symbol(str(key))
        subs[sym] = value
    out = bea.concrete_field(meq, variables, losses=losses, fields=fields, params=subs)
    multi = isinstance(out, tuple)
    blocks = [list(b) for b in variables] if multi else [list(variables)]
    parts = out if multi else (out,)
    flat_vars = [v for b in blocks for v in b]
    exprs = [e for p in parts for e in p]
    fn = sp.lambdify([flat_vars, bea.H], exprs, modules="jax")
    sizes = [len(b) for b in blocks]

    def field(state, h):
        z = jnp.concatenate([jnp.ravel(s) for s in state]) if multi else jnp.ravel(state)
        vals = jnp.stack([jnp.asarray(v, dtype=z.dtype) * jnp.ones(()) for v in fn(z, h)])
        if not multi:
            return vals
        out, start = [], 0
        for n in sizes:
            out.append(vals[start : start + n])
            start += n
        return tuple(out)

    return field
