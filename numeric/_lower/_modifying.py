"""Numerical evaluation of a modifying integrator's oracle corrections.

`bea.modifying_integrator` returns a rule whose oracles carry corrections
sum c h^k F(tau); run by `numeric.discrete_map`, each correction is evaluated at the
rule's point by the same Hessian-free kernels as a modified field (`field_function`),
compiled once with the map.
"""

from __future__ import annotations

import jax
from sympy.polys.domains import EX

from ._kernels import TermSeries, field_function
from ._params import Step, Value

__all__ = ["series_at"]


def _plain(x):
    return x.value if isinstance(x, Step | Value) else x


def series_at(layout, oracles, terms, point, h, block: int, colours, bound):
    """sum c h^k F(tau)(point), block `block`, shaped as the rule sees that block."""
    blocks = tuple(layout.blocks)
    fake = TermSeries(
        "modifying integrator",
        tuple((t, k, EX.from_sympy(c)) for t, k, c in terms),
        tuple(colours),
        EX,
        blocks,
    )
    fn = field_function(fake, {k: v for k, v in bound.items()})
    point = jax.tree_util.tree_map(_plain, point, is_leaf=lambda x: isinstance(x, Step | Value))
    state = layout.unflatten(layout.unview(point, "the point of a modified oracle"))
    out = fn(state, _plain(h), oracles.losses, oracles.fields)
    flat = layout.flatten(out, "a modified oracle")
    return layout.view_block(block, layout.block(flat, block))
