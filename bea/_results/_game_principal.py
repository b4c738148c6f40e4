"""The principal flow of a two-player (multi-block) rule, on the linearised game.

With one-dimensional players and linear fields f(y) = f_phi phi + f_theta theta, ...
(gradient oracles: the Hessian blocks), a rule is a matrix polynomial y' = R y; the
modified field of the linearised game is exactly log(R)/T y, the principal flow of the
game. `game_principal_flow` gives R, log(R)/T as a series checked exactly against the
engine's chain terms, and for two players a closed form (Sylvester's formula) with the
Schur-Cohn stability conditions |det R| < 1, |tr R| < 1 + det R.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sympy as sp

from .._core._errors import BeaValueError, check_integer
from .._core._scalars import H
from .._equation._modified import modified_equation, over_trees
from .._rules._rule import Rule, as_rule, call_rule
from ._chains import _is_chain
from ._principal import reserved_symbols

__all__ = ["GamePrincipalFlow", "game_principal_flow"]


@dataclass(frozen=True)
class GamePrincipalFlow:
    """The principal flow of a rule over several blocks, on the linearised game.

    Each oracle colour c is linear, c(y) = sum_j J[c, j] y_j with one-dimensional
    blocks (players) y_j and symbols `J[c, j]` named `<colour>_<block>`; the rule is
    then y' = R y with R a matrix polynomial in h, and the principal flow of the game
    is y_dot = log(R) y / T.

    Arguments:
        rule: the rule's name.
        order: the order of the series check.
        time: T = c h.
        blocks: the blocks (players).
        jacobian: colour -> row of symbols (the linearisation of that oracle).
        R: the one-step matrix.
        flow_series: log(R)/T expanded to h^order (the game's linear modified field).
        series_matches: the engine's chain trees give exactly `flow_series`.
        eigenvalues: the eigenvalues of R (two blocks: r = (tr ± sqrt(tr^2 - 4 det))/2).
        flow: for two blocks, the closed form log(R)/T by Sylvester's formula
            (log r1 (R - r2 I) - log r2 (R - r1 I)) / ((r1 - r2) T), distinct r.
        stability: for two blocks, Schur-Cohn: both |r| < 1 iff
            |det R| < 1 and |tr R| < 1 + det R.
    """

    rule: str
    order: int
    time: sp.Expr
    blocks: tuple[str, ...]
    jacobian: tuple[tuple[str, tuple[sp.Symbol, ...]], ...]
    R: sp.Matrix
    flow_series: sp.Matrix
    series_matches: bool
    eigenvalues: tuple[sp.Expr, ...]
    flow: sp.Matrix | None
    stability: sp.Expr | None

    def text(self) -> str:
        rows = "; ".join(
            f"{col}(y) = " + " + ".join(f"{s}*{b}" for s, b in zip(row, self.blocks, strict=True))
            for col, row in self.jacobian
        )
        lines = [
            f"principal flow of {self.rule} on the linearised game (time per step {self.time})",
            f"  players {', '.join(self.blocks)} one-dimensional; {rows}",
            f"  one step: y' = R y,  R = {self.R.tolist()}",
            f"  principal flow: y_dot = log(R) y / ({self.time})",
            f"  chain terms of the series (order {self.order}) match log(R)/T: "
            f"{'yes' if self.series_matches else 'NO'}",
        ]
        if len(self.blocks) == 2:
            tr, det = sp.expand(self.R.trace()), sp.expand(self.R.det())
            lines += [
                "  with tr R and det R the trace and determinant of R:",
                f"    tr R  = {tr}",
                f"    det R = {sp.factor(det)}",
                "  eigenvalues of R: r = (tr R ± sqrt(tr R^2 - 4 det R)) / 2",
                "  stable (both |r| < 1, the Schur-Cohn conditions) exactly when",
                "    |det R| < 1  and  |tr R| < 1 + det R",
            ]
        elif self.eigenvalues:
            lines.append(f"  eigenvalues of R: {', '.join(str(e) for e in self.eigenvalues)}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.text()


def _matrix_log_series(R: sp.Matrix, order: int) -> sp.Matrix:
    """log(R) as a polynomial in h to h^order, for R = I + O(h)."""
    n = R.shape[0]
    D = (R - sp.eye(n)).applyfunc(sp.expand)
    out = sp.zeros(n, n)
    P = sp.eye(n)
    for m in range(1, order + 1):
        P = (P * D).applyfunc(lambda e: _truncate(sp.expand(e), order))
        out += sp.Rational((-1) ** (m + 1), m) * P
    return out.applyfunc(lambda e: _truncate(sp.expand(e), order))


def _truncate(e: sp.Expr, order: int) -> sp.Expr:
    return sum((e.coeff(H, k) * H**k for k in range(order + 1)), sp.Integer(0))


def game_principal_flow(
    rule: Rule | Callable, order: int = 4, *, force: bool = False
) -> GamePrincipalFlow:
    """The principal flow of a rule over several blocks, on the linearised game.

    Arguments:
        rule: a `bea.Rule` with several blocks (`bea.rules.simultaneous`,
            `bea.rules.alternating`, or a user rule).
        order: the order of the exact check of the engine's chain trees against
            log(R)/T (the derivation's cost grows quickly with it).
        force: derive even when the tree count exceeds `bea.MAX_TREES`.

    Returns:
        A `GamePrincipalFlow` with R, log(R)/T as a series and, for two players, in
        closed form with the Schur-Cohn stability conditions.

    Example:
        >>> import bea
        >>> g = game_principal_flow(bea.rules.simultaneous, order=2)
        >>> g.series_matches, g.R.tolist()
        (True, [[alpha*f_phi*h + 1, alpha*f_theta*h], [g_phi*h*lambda, g_theta*h*lambda + 1]])
    """
    r = over_trees(as_rule(rule), "the game principal flow")
    check_integer(order, "order", 1)
    if r.memory:
        raise BeaValueError(
            f"rule {r.name!r} has memory {', '.join(r.memory)}; the game principal flow is "
            "derived for one-step rules without memory"
        )
    reserved_symbols(r, ("h",))
    meq = modified_equation(r, order, force=force)
    blocks = meq.blocks
    c = r.time_factor
    jac = {o.colour: tuple(sp.Symbol(f"{o.colour}_{b}") for b in blocks) for o in meq.oracles}
    ys = tuple(sp.Symbol(f"_y_{b}") for b in blocks)
    by_name = {(o.kind, o.name, o.block): o.colour for o in meq.oracles}

    def value(colour, point):
        pts = point if isinstance(point, tuple) else (point,)
        return sum((s * p for s, p in zip(jac[colour], pts, strict=True)), sp.Integer(0))

    def grad(name, point, sample=None):
        if len(blocks) == 1:
            return value(by_name[("grad", name, blocks[0])], point)
        return tuple(value(by_name[("grad", name, b)], point) for b in blocks)

    def field(name, point):
        cols = [col for (k, n, _), col in by_name.items() if k == "field" and n == name]
        return value(cols[0], point)

    state = ys if len(blocks) > 1 else ys[0]
    out = call_rule(r.update, state, H, grad, field)
    outs = out if isinstance(out, tuple) else (out,)
    R = sp.Matrix([[sp.expand(sp.sympify(o)).coeff(y) for y in ys] for o in outs])

    # the chain trees on the linear game: F(c1[c2[..ck]]) = P_c1 ... P_ck y
    P = {}
    for o in meq.oracles:
        m = sp.zeros(len(blocks), len(blocks))
        m[blocks.index(o.block), :] = sp.Matrix([jac[o.colour]])
        P[o.colour] = m
    M = sp.zeros(len(blocks), len(blocks))
    for t, k, coef in meq.terms:
        if not _is_chain(t):
            continue
        prod, node = sp.eye(len(blocks)), t
        while True:
            prod = prod * P[node.root]
            if not node.children:
                break
            node = node.children[0]
        M += meq.domain.to_sympy(coef) * H**k * prod
    logR = _matrix_log_series(R, order + 1)
    flow_series = (logR / (c * H)).applyfunc(lambda e: sp.expand(sp.cancel(e)))
    series_matches = (M.applyfunc(sp.expand) - flow_series).is_zero_matrix is True

    flow = stability = None
    eig: tuple = ()
    if len(blocks) == 2:
        tr, det = sp.expand(R.trace()), sp.expand(R.det())
        disc = sp.sqrt(sp.expand(tr**2 - 4 * det))
        eig = ((tr + disc) / 2, (tr - disc) / 2)
        r1, r2 = sp.symbols("r1 r2")
        I2 = sp.eye(2)
        flow = (sp.log(r1) * (R - r2 * I2) - sp.log(r2) * (R - r1 * I2)) / ((r1 - r2) * c * H)
        stability = sp.And(sp.Abs(det) < 1, sp.Abs(tr) < 1 + det)
    return GamePrincipalFlow(
        rule=r.name,
        order=order,
        time=sp.sympify(r.time),
        blocks=blocks,
        jacobian=tuple(jac.items()),
        R=R,
        flow_series=flow_series,
        series_matches=series_matches,
        eigenvalues=eig,
        flow=flow,
        stability=stability,
    )
