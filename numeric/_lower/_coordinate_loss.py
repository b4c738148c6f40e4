"""The modified loss of a coordinate-wise rule as a JAX function, on states of any size.

`bea.modified_loss(meq, preconditioner=...)` gives Ẽ = E + Σ_p h^p L_p with the field −P⁻¹∇Ẽ, each
L_p an expression in the gradient's components E_i (and their declared signs s_i)
derived in some dimension d. For a coordinate-wise rule L_p is a sum over coordinates
of one function, L_p = Σᵢ ψ_p(∂ᵢE, sign ∂ᵢE) (Adam as ε → 0: ψ₁(g, s) = c·s·g, the
one-norm ‖∇E‖₁ times c). That separation is read off exactly (every term of L_p
involves a single coordinate, and coordinate i's part is coordinate 1's with the
index changed), so the kernel evaluates ψ_p elementwise on the gradient of a state of
any shape or pytree: it can be added to a training loss as an explicit regulariser.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import sympy as sp

from bea import BeaTypeError, BeaValueError

from ._params import exact_number, split_h, step_size

__all__ = ["CoordinateLossFn", "coordinate_loss_fn"]


def _per_coordinate(expr: sp.Expr, gs, ss, what: str):
    """`(ψ, g, s)`: ψ(g, s) in two fresh symbols with expr = Σᵢ ψ(gᵢ, sᵢ), or
    `BeaValueError` naming the coupling term."""
    index = {}
    for i, (g, s) in enumerate(zip(gs, ss, strict=True)):
        index[g] = i
        if isinstance(s, sp.Symbol):
            index[s] = i
    groups: dict[int, sp.Expr] = {}
    for term in sp.Add.make_args(sp.expand(expr)):
        if term == 0:
            continue
        found = {index[x] for x in term.free_symbols if x in index}
        if len(found) != 1:
            raise BeaValueError(
                f"{what} has the term {term}, which is not a function of one gradient "
                "component; it has no elementwise kernel"
            )
        (i,) = found
        groups[i] = groups.get(i, sp.S.Zero) + term
    u, v = sp.Dummy("g"), sp.Dummy("s")

    def psi(i):
        part = groups.get(i, sp.S.Zero)
        return part.xreplace({gs[i]: u, ss[i]: v} if isinstance(ss[i], sp.Symbol) else {gs[i]: u})

    first = psi(0)
    for i in range(1, len(gs)):
        if sp.expand(psi(i) - first) != 0:
            raise BeaValueError(
                f"{what} treats coordinate {i + 1} differently from coordinate 1; it has no "
                "elementwise kernel"
            )
    return first, u, v


class CoordinateLossFn:
    """`fn(state, h)`: the modified loss E + Σ_p h^p Σᵢ ψ_p(∂ᵢE, sign ∂ᵢE) (see module)."""

    def __init__(self, loss, losses: Mapping, params=None):
        if "E" not in (losses or {}):
            raise BeaValueError("losses has no entry 'E'; pass losses={'E': fn}")
        self.E = losses["E"]
        self.h, bound = split_h(params)
        d = len(loss.preconditioner)
        names = {s.name: s for t in loss.terms for s in t.free_symbols}
        gs = [names.get(f"E_{i + 1}", sp.Symbol(f"E_{i + 1}")) for i in range(d)]
        ss = [names.get(f"s_{i + 1}", sp.S.One) for i in range(d)]
        self.psis = []
        for p, term in enumerate(loss.terms):
            rest = sp.expand(term - term.coeff(loss.loss_symbol) * loss.loss_symbol)
            scale = sp.expand(term - rest).coeff(loss.loss_symbol)
            psi, u, v = _per_coordinate(rest, gs, ss, f"the h^{p} term of the loss")
            values = {}
            for s in (psi.free_symbols | scale.free_symbols) - {u, v}:
                if s.name not in bound:
                    raise BeaValueError(
                        f"parameter {s.name!r} of the loss is unbound; pass "
                        f"params={{{s.name!r}: value}}"
                    )
                values[s] = exact_number(bound[s.name])
            fn = sp.lambdify([u, v], psi.xreplace(values), modules=[{"sign": jnp.sign}, "jax"])
            self.psis.append((p, float(scale.xreplace(values)), fn))
        self._jit = jax.jit(self.apply)

    def apply(self, state, h):
        """The loss at `state` (not jit-compiled)."""
        value, grad = jax.value_and_grad(self.E)(state)
        grads = jax.tree_util.tree_leaves(grad)
        total = jnp.zeros((), dtype=jnp.result_type(float))
        for p, scale, fn in self.psis:
            term = scale * value
            for g in grads:
                term = term + jnp.sum(fn(g, jnp.sign(g)) * jnp.ones_like(g))
            total = total + h**p * term
        return total

    def __call__(self, state, h=None):
        h = self.h if h is None else h
        if h is None:
            raise BeaValueError("the learning rate h is unbound; call fn(state, h)")
        return self._jit(state, step_size(h))


def coordinate_loss_fn(loss, losses: Mapping, params=None) -> CoordinateLossFn:
    """The modified loss of a coordinate-wise rule
    (`bea.modified_loss(meq, preconditioner=...)`) as a jit-compiled JAX scalar
    function `fn(state, h)` on states of any size.

    Arguments:
        loss: a `bea.CoordinateModifiedLoss`.
        losses: `{"E": fn}`, the loss as a scalar JAX function of the state.
        params: numbers for the rule's symbols (`beta1`, `beta2`, ...) and optionally `h`.

    Returns:
        A `CoordinateLossFn`; −∇fn / P is the modified field (P the preconditioner).

    Example:
        >>> import bea, numeric, jax.numpy as jnp
        >>> meq = bea.modified_equation(bea.rules.adam_rule(eps=0), 1,
        ...                             region={"signs": "symbolic"})
        >>> loss = bea.modified_loss(meq, preconditioner="abs_grad")
        >>> fn = numeric.loss_fn(loss, {"E": lambda x: jnp.sum(x**2) / 2},
        ...                      {"beta1": 0.9, "beta2": 0.999})
        >>> round(float(fn(jnp.array([1.0, -2.0, 3.0]), 0.001)), 12)  # 7 - 0.99 * 6
        1.06
    """
    from bea import CoordinateModifiedLoss

    if not isinstance(loss, CoordinateModifiedLoss):
        raise BeaTypeError(f"loss={loss!r} is not a bea.CoordinateModifiedLoss")
    return CoordinateLossFn(loss, losses, params)
