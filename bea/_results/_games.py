"""Two-player games: modified Jacobians at fixed points and the comparison table of Rosca et al.

The modified Jacobian is the Jacobian of the (concrete) modified field at a fixed
point; at order 1 it is J~ = J - h/2 Delta (Rosca et al., ICML 2021). Its eigenvalues
decide the local stability of the modified flow, so simultaneous and alternating
updates can be compared. The comparison table (Rosca et al., ICML 2021, Table 1) is generated from
the engine's derivations in both conventions, next to the explicit regularisers the
paper compares against.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import sympy as sp

from .._core._errors import BeaValueError
from .._core._trees import Tree
from .._equation._modified import ModifiedEquation, modified_equation
from .._rules._builtin import zero_sum_alternating, zero_sum_simultaneous
from ._concrete import concrete_field
from ._losses import modified_loss
from ._sgd import closed_form_in

__all__ = ["comparison_table", "modified_jacobian"]


def modified_jacobian(
    meq: ModifiedEquation,
    variables: Sequence,
    point: Mapping,
    losses: Mapping | None = None,
    fields: Mapping | None = None,
    params: Mapping | None = None,
) -> sp.Matrix:
    """The Jacobian of the concrete modified field at `point`, exact in h and parameters.

    Arguments:
        meq: the modified equation (any order, either convention).
        variables: the state's symbols (list per block for several players).
        point: symbol -> value of the fixed point.
        losses, fields, params: as for `bea.concrete_field`.

    Example (bilinear game E = phi theta, simultaneous, per-player, order 1):
        >>> import sympy as sp, bea
        >>> x, y = sp.symbols("x y")
        >>> meq = bea.modified_equation(bea.rules.zero_sum_simultaneous, 1, convention="per_player")
        >>> J = modified_jacobian(meq, [[x], [y]], {x: 0, y: 0}, losses={"E": x * y})
        >>> J
        Matrix([
        [alpha*h/2,          1],
        [       -1, h*lambda/2]])
    """
    field = concrete_field(meq, variables, losses=losses, fields=fields, params=params)
    if isinstance(field, tuple):
        field = sp.Matrix.vstack(*field)
        flat = [v for b in variables for v in b]
    else:
        flat = list(variables)
    missing = [v for v in flat if v not in point]
    if missing:
        raise BeaValueError(f"point has no value for {missing[0]}; give every state variable")
    return field.jacobian(flat).subs(point).applyfunc(sp.expand)


def _interaction(meq: ModifiedEquation, block: str, other: str) -> dict[str, sp.Expr]:
    """The coefficients (over h) of ‖∇_block E‖² ("self") and ‖∇_other E‖²
    ("interaction") in `block`'s loss, looked up by free tree: ‖∇_B E‖² is the tree
    E - E whose edge carries B, rooted as E_B[E_B]."""
    loss = modified_loss(meq, block)
    colour = {c.block: c.label for c in meq.oracles if c.kind == "grad" and c.name == "E"}

    def norm(b: str) -> Tree:
        return Tree(colour[b], (Tree(colour[b]),))

    return {"self": loss.coefficient(norm(block)), "interaction": loss.coefficient(norm(other))}


def comparison_table(convention: str = "per_player") -> str:
    """Rosca et al. (ICML 2021) Table 1 as LaTeX, DD rows derived by the engine.

    Zero-sum game min_theta max_phi E with learning rates alpha h, lambda h and m, k
    updates per player (alternating). Each entry is the implicit (DD) or explicit
    regulariser added to the player's loss (phi's loss is -E + ..., theta's E + ...).
    The DD rows are derived here (first order; m and k as closed forms fitted on
    m, k = 1..3 and checked at 4); the explicit methods are the published ones.
    """
    h = sp.Symbol("h")
    m, k = sp.symbols("m k", positive=True, integer=True)
    gp, gt = r"\|\nabla_\phi E\|^2", r"\|\nabla_\theta E\|^2"

    def fmt(c, g):
        c = sp.factor(c)
        return "" if c == 0 else f"{sp.latex(c)} {g}"

    def entry(*parts):
        parts = [p for p in parts if p]
        if not parts:
            return r"\text{--}"
        s = " + ".join(parts)
        return "$" + s.replace("+ -", "- ") + "$"

    sim_meq = modified_equation(zero_sum_simultaneous, 1, convention=convention)
    sim = {b: _interaction(sim_meq, b, o) for b, o in (("phi", "theta"), ("theta", "phi"))}
    alt_meqs: dict[tuple[int, int], ModifiedEquation] = {}  # each (m, k) derived once

    def alt(block, other, part, sym):
        def val(n):
            steps = (n, 1) if sym == m else (1, n)
            if steps not in alt_meqs:
                rule = zero_sum_alternating.with_params(m=steps[0], k=steps[1])
                alt_meqs[steps] = modified_equation(rule, 1, convention=convention)
            return _interaction(alt_meqs[steps], block, other)[part]

        return closed_form_in(val, sym, (1, 2, 3), 4)

    alt_phi_self = alt("phi", "theta", "self", m)
    alt_phi_int = alt("phi", "theta", "interaction", m)
    alt_theta_self = alt("theta", "phi", "self", k)
    alt_theta_int = alt("theta", "phi", "interaction", k)
    eta = sp.Symbol("eta")
    rows = [
        ("DD (S)", r"\ding{55}",
         entry(fmt(sim["phi"]["self"] * h, gp), fmt(sim["phi"]["interaction"] * h, gt)),
         entry(fmt(sim["theta"]["interaction"] * h, gp), fmt(sim["theta"]["self"] * h, gt))),
        ("DD (A)", r"\ding{55}",
         entry(fmt(alt_phi_self * h, gp), fmt(alt_phi_int * h, gt)),
         entry(fmt(alt_theta_int * h, gp), fmt(alt_theta_self * h, gt))),
        ("Cancel DD interaction terms (S)", r"\ding{51}",
         entry(fmt(-sim["phi"]["interaction"] * h, gt)),
         entry(fmt(-sim["theta"]["interaction"] * h, gp))),
        ("Cancel DD interaction terms (A)", r"\ding{51}",
         entry(fmt(-alt_phi_int * h, gt)), entry(fmt(-alt_theta_int * h, gp))),
        ("SGA (S)", r"\ding{51}", entry(fmt(sp.Rational(1, 2), gt)),
         entry(fmt(sp.Rational(1, 2), gp))),
        ("Consensus optimization (S)", r"\ding{51}", entry(fmt(eta, gp), fmt(eta, gt)),
         entry(fmt(eta, gp), fmt(eta, gt))),
        ("Locally stable GAN (S)", r"\ding{51}", r"\ding{55}", entry(fmt(eta, gp))),
        ("ODE-GAN (S)", r"\ding{51}", entry(fmt(eta, gt)), r"\ding{55}"),
    ]  # fmt: skip
    conv = (
        "per-player convention (Rosca et al. 2021)"
        if convention == "per_player"
        else "whole-state flow convention"
    )
    lines = [
        f"% generated by bea.games.comparison_table(convention={convention!r}): {conv}",
        r"\begin{tabular}{llll}",
        r"\hline",
        r" & Explicit & First player ($\phi$) & Second player ($\theta$) \\",
        r"\hline",
    ]
    lines += [f"{name} & {ex} & {a} & {b} \\\\" for name, ex, a, b in rows]
    lines += [r"\hline", r"\end{tabular}"]
    return "\n".join(lines)
