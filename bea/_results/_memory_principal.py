"""The principal flow of a rule with memory: the slow root of its characteristic
polynomial.

On a quadratic E = 1/2 lambda x^2 a rule with memory is a linear map of (x, m),
(x', m') = M(z) (x, m) with z = h lambda, and its iterates are combinations of
rho_i^n for the roots of the characteristic polynomial p(rho, z) = det(rho I - M(z)).
One root, the *slow root* R(z) with R(0) = 1, carries the slow manifold; the
others (beta, ... at z = 0) are the start-up transient. The modified equation's
chain terms sum to the flow of the slow root, s(z) = log(R(z))/(c z) (Rosca et al.,
TMLR 2023, for one-step rules; for heavy ball the root is
R = ((1 + beta - z) + sqrt((1 + beta - z)^2 - 4 beta))/2, Qian, Neural Networks 12,
1999). The iterates are stable when every root lies in the unit disc, which for a
quadratic p = rho^2 + a1 rho + a0 is the Schur-Cohn (Jury) condition
|a0| < 1, |a1| < 1 + a0: for heavy ball 0 < z < 2 (1 + beta).

Example:
    >>> import bea
    >>> pf = bea.principal_flow(bea.rules.heavy_ball, order=4)
    >>> pf.characteristic
    -beta*rho + beta + rho**2 + rho*z - rho
    >>> pf.series_matches, pf.stability[-1]
    (True, Abs(beta - z + 1) < beta + 1)
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp
from sympy.polys.domains import QQ

from .._core._errors import BeaValueError
from .._equation._modified import modified_equation
from .._rules._rule import Rule, call_rule
from ._chains import Z, chain_coefficients

__all__ = ["MemoryPrincipalFlow", "memory_principal_flow"]

RHO = sp.Symbol("rho")


@dataclass(frozen=True)
class MemoryPrincipalFlow:
    """The principal flow of a one-block rule with memory.

    Arguments:
        rule: the rule's name.
        order: the order of the engine's series used.
        chain: S_0, ..., S_N, the summed chain-tree coefficients of the modified
            equation (s(z) = sum_k S_k z^k).
        matrix: M(z), one step on the quadratic, acting on (x, m_1, ...).
        characteristic: p(rho, z) = det(rho I - M(z)).
        slow_root_series: R(z) = exp(c z s(z)) to z^(N+1), from the engine.
        series_matches: p(R(z), z) = O(z^(N+2)) exactly: the engine's chain terms are
            the flow of the slow root.
        stability: the Schur-Cohn conditions for every root in the unit disc (degree
            2: |a0| < 1 and |a1| < 1 + a0), as SymPy relations in z and the
            parameters; None for higher degree.
        stable: the real z satisfying them, when no parameter is left symbolic.
    """

    rule: str
    order: int
    chain: tuple[sp.Expr, ...]
    matrix: sp.Matrix
    characteristic: sp.Expr
    slow_root_series: sp.Expr
    series_matches: bool
    stability: tuple | None
    stable: sp.Set | None

    @property
    def z(self) -> sp.Symbol:
        return Z

    def text(self) -> str:
        lines = [
            f"{self.rule}: principal flow from the slow root of its characteristic polynomial",
            f"p(rho, z) = {sp.collect(sp.expand(self.characteristic), RHO)}",
            f"slow root R(z) = {self.slow_root_series} + O(z^{self.order + 2})",
            f"s(z) = log(R(z))/z = {sum(c * Z**k for k, c in enumerate(self.chain))} + ...",
            "engine's chain terms are the slow root's flow: "
            + ("yes" if self.series_matches else "NO"),
        ]
        if self.stability is not None:
            lines.append("stable when " + " and ".join(str(c) for c in self.stability))
        if self.stable is not None:
            lines.append(f"stable for real z in {self.stable}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.text()


def _quadratic_matrix(r: Rule) -> sp.Matrix:
    """M(z): the rule on E = 1/2 lambda x^2, as a matrix on (x, m_1, ...)."""
    n = len(r.memory)
    xs = sp.symbols(f"_x0:{n + 1}")
    lam = sp.Symbol("_lambda")
    h = sp.Symbol("h")

    def linear(name, point, sample=None):
        return lam * point

    out = call_rule(r.update, xs[0], h, linear, linear, list(xs[1:]))
    rows = []
    for value in out:
        e = sp.expand(sp.sympify(value).subs(lam, Z / h))
        rows.append([e.coeff(x) for x in xs])
    m = sp.Matrix(rows)
    if m.has(h):
        raise BeaValueError(
            f"rule {r.name!r} on a quadratic is not a function of z = h*lambda alone; the "
            "principal flow needs steps that are h times an oracle value"
        )
    return m


def _slow_root(chain, c, p: sp.Expr, top: int) -> tuple[sp.Expr, bool]:
    """R(z) = exp(c z s(z)) to z^top, and whether p(R(z), z) = O(z^(top+1)).

    Power series with coefficients in QQ(params): R' = (c z s)' R gives
    n R_n = sum_{k=1}^n k a_k R_{n-k} with a_k = c S_(k-1).
    """
    syms = sorted(
        set().union(*(sp.sympify(e).free_symbols for e in (*chain, c, p))) - {Z, RHO},
        key=lambda s: s.name,
    )
    K = QQ.frac_field(*syms) if syms else QQ
    a = [K.zero] + [K.from_sympy(sp.sympify(c * ck)) for ck in chain[:top]]
    a += [K.zero] * (top + 1 - len(a))
    R = [K.one]
    for n in range(1, top + 1):
        R.append(sum((K(k) * a[k] * R[n - k] for k in range(1, n + 1)), K.zero) / K(n))
    # p(R(z), z) as a series: p = sum_j q_j(z) rho^j
    residual = [K.zero] * (top + 1)
    power = [K.one] + [K.zero] * top  # R^j
    poly = sp.Poly(p, RHO)
    for j in range(poly.degree() + 1):
        q = sp.Poly(poly.coeff_monomial(RHO**j), Z)
        for (e,), qc in q.terms():
            qk = K.from_sympy(qc)
            for n in range(top + 1 - e):
                residual[n + e] += qk * power[n]
        power = [sum((power[i] * R[n - i] for i in range(n + 1)), K.zero) for n in range(top + 1)]
    series = sum((sp.factor(K.to_sympy(v)) * Z**n for n, v in enumerate(R)), sp.Integer(0))
    return series, all(v == K.zero for v in residual)


def memory_principal_flow(r: Rule, order: int, *, force: bool = False) -> MemoryPrincipalFlow:
    """`bea.principal_flow` for a one-block rule with memory (see the module docs)."""
    if len(r.blocks) != 1:
        raise BeaValueError(
            f"rule {r.name!r} has blocks {r.blocks}; the principal flow of rules with memory "
            "is for one player"
        )
    meq = modified_equation(r, order, force=force)
    chain = tuple(sp.factor(ck) for ck in chain_coefficients(meq))
    c = sp.simplify(sp.sympify(r.time) / sp.Symbol("h"))
    m = _quadratic_matrix(r)
    p = sp.expand((RHO * sp.eye(m.shape[0]) - m).det())
    R, matches = _slow_root(chain, c, p, order + 1)
    poly = sp.Poly(p, RHO)
    stability, stable = None, None
    if poly.degree() == 2:
        lead, a1, a0 = poly.all_coeffs()
        a1, a0 = sp.simplify(a1 / lead), sp.simplify(a0 / lead)
        stability = tuple(
            cond for cond in (sp.Abs(a0) < 1, sp.Abs(a1) < 1 + a0) if cond is not sp.true
        )
        if not (a0.free_symbols | a1.free_symbols) - {Z}:
            zr = sp.Symbol("z", real=True)
            conds = [sp.sympify(cond).subs(Z, zr) for cond in stability]
            stable = sp.Intersection(*(sp.solveset(cond, zr, sp.S.Reals) for cond in conds))
    return MemoryPrincipalFlow(
        rule=r.name,
        order=order,
        chain=chain,
        matrix=m,
        characteristic=p,
        slow_root_series=R,
        series_matches=bool(matches),
        stability=stability,
        stable=stable,
    )
