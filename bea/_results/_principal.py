"""The principal flow of a rule: its chain terms summed in closed form, and stability.

The chain trees `E[E[...[E]]]` (every vertex with at most one child) are the terms of
the modified equation that use only first and second derivatives: with g = grad E and
H its Hessian, F(E[E[...]]) with k+1 vertices is H^k g. On a quadratic
E = 1/2 x^T H x every other tree vanishes, the rule is a matrix polynomial
x' = R(hH) x, and the modified field is exactly log(R(hH))/T x for a rule covering
time T = c h. Per Hessian eigendirection u_i (z_i = h lambda_i), that is the
*principal flow* of Rosca et al. (TMLR 2023):

    theta_dot = sum_i s(z_i) (grad E . u_i) u_i,    s(z) = log(R(z)) / (c z),

and s(z) = sum_k S_k z^k where S_k sums the engine's coefficients of the chain trees
with k+1 vertices. Gradient descent has R(z) = 1 - z, S_k = -1/(k+1),
s(z) = log(1 - z)/z.

`principal_flow` reads the S_k off `modified_equation`, recognises their generating
function (a rational function, or the log of a product of polynomials) by exact Padé
approximation of (c z s(z))', and confirms it against R(z) traced from the rule on a
one-dimensional quadratic. For field rules (`field("f", y)`, the Runge-Kutta rules)
z = h mu with f(y) = mu y, the Dahlquist test equation: explicit Euler has
R(z) = 1 + z; the gradient-descent reading f = -grad E is z = -h lambda.

Rules over several blocks (two-player games) are linearised instead, in
`_game_principal.py`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import sympy as sp

from .._core._errors import BeaValueError, check_integer
from .._core._scalars import H, exact_value
from .._equation._modified import modified_equation, over_trees
from .._rules._rule import Rule, as_rule, call_rule, takes_time
from ._chains import Z, chain_coefficients
from ._memory_principal import memory_principal_flow

__all__ = [
    "PrincipalFlow",
    "principal_flow",
    "quadratic_map",
    "recognise_generating_function",
]

# -- recognising a generating function ---------------------------------------------


def _pade(coeffs: list[sp.Expr], p: int, q: int) -> tuple[sp.Expr, sp.Expr] | None:
    """P/Q with deg P <= p, deg Q <= q, Q(0) = 1 matching every coefficient, or None."""
    n = len(coeffs)
    qs = sp.symbols(f"_q1:{q + 1}")

    def c(i):
        return coeffs[i] if 0 <= i < n else sp.Integer(0)

    eqs = [c(k) + sum(qs[j - 1] * c(k - j) for j in range(1, q + 1)) for k in range(p + 1, n)]
    if q:
        sol = sp.linsolve(eqs[:q], qs)
        if not sol or sol is sp.S.EmptySet:
            return None
        vals = dict(zip(qs, next(iter(sol)), strict=True))
        if any(v.free_symbols & set(qs) for v in vals.values()):
            return None  # underdetermined: a lower degree fits
    else:
        vals = {}
    if any(sp.simplify(e.subs(vals)) != 0 for e in eqs):
        return None
    Q = 1 + sum(vals[qs[j - 1]] * Z**j for j in range(1, q + 1))
    P = sum(
        (c(k) + sum(vals[qs[j - 1]] * c(k - j) for j in range(1, min(k, q) + 1))) * Z**k
        for k in range(p + 1)
    )
    return sp.factor(P), sp.factor(Q)


def _rational_guess(coeffs: list[sp.Expr], checks: int = 2) -> sp.Expr | None:
    """The rational function of least total degree whose series matches `coeffs`,
    using at least `checks` coefficients beyond those that fix it; None if none."""
    n = len(coeffs)
    for total in range(n - checks):
        for q in range(total + 1):
            got = _pade(coeffs, total - q, q)
            if got is not None:
                return sp.cancel(got[0] / got[1])
    return None


def recognise_generating_function(coeffs, c=1) -> tuple[str, sp.Expr] | None:
    """Recognise s(z) = sum_k coeffs[k] z^k in closed form.

    Arguments:
        coeffs: exact coefficients S_0, ..., S_N (SymPy numbers or expressions).
        c: the rule's time per call in units of h (T = c h).

    Returns:
        `("rational", s)` when s itself is a rational function of low degree,
        `("log", s)` with s = log(prod Q_i^m_i)/(c z) when (c z s)' is a rational
        function whose partial fractions are m_i Q_i'/Q_i (a logarithmic derivative),
        or None. At least two coefficients beyond those that fix the guess must
        agree, so a guess is never forced by the data alone.

    Example:
        >>> import sympy as sp
        >>> recognise_generating_function([-sp.Rational(1, k + 1) for k in range(8)])
        ('log', log(1 - z)/z)
    """
    coeffs = [exact_value(x, "coeffs") for x in coeffs]
    c = exact_value(c, "c")
    rat = _rational_guess(coeffs)
    if rat is not None and sp.denom(rat).free_symbols & {Z}:
        return "rational", rat
    # (c z s(z))' = sum_k c (k+1) S_k z^k should be R'/R
    deriv = [sp.expand(c * (k + 1) * x) for k, x in enumerate(coeffs)]
    ld = _rational_guess(deriv)
    if ld is None:
        return ("rational", rat) if rat is not None else None
    _num, den = sp.fraction(sp.cancel(ld))
    _, factors = sp.factor_list(den, Z)
    factors = [f for f, _ in factors if f.has(Z)]
    ms = sp.symbols(f"_m0:{len(factors)}")
    guess = sum(m * sp.diff(f, Z) / f for m, f in zip(ms, factors, strict=True))
    eq = sp.Poly(sp.numer(sp.together(guess - ld)), Z).all_coeffs()
    sol = sp.solve(eq, ms, dict=True)
    if not sol or any(not sol[0].get(m, sp.nan).is_rational for m in ms):
        return ("rational", rat) if rat is not None else None
    logs = sum(sol[0][m] * sp.log(_normalise(f)) for m, f in zip(ms, factors, strict=True))
    return "log", logs / (c * Z)


def _normalise(f: sp.Expr) -> sp.Expr:
    """f / f(0), so that log f(0) = 0."""
    f0 = f.subs(Z, 0)
    return sp.expand(f / f0) if f0 != 0 else f


# -- the rule on a quadratic -------------------------------------------------------


def reserved_symbols(r: Rule, names: tuple[str, ...]) -> None:
    """Refuse a rule whose parameters use a symbol the report writes itself (z, h).

    `principal_flow` writes z = h*lambda; a parameter `rho = z` would be silently
    identified with it and R(z) would mean nothing.
    """
    for key, value in r.params:
        used = {getattr(x, "name", "") for x in getattr(sp.sympify(value), "free_symbols", ())}
        clash = sorted(used & set(names))
        if clash:
            raise BeaValueError(
                f"parameter {key} = {value} of rule {r.name!r} uses the symbol {clash[0]!r}, "
                f"which the principal flow reserves ({', '.join(names)}); use another symbol"
            )


def quadratic_map(rule: Rule | Callable) -> sp.Expr:
    """R(z): one step of a one-block rule on grad E(x) = lambda x (or f(y) = mu y).

    Every oracle of the rule is the same linear map; z = h lambda. The rule's update
    function runs on SymPy scalars, the same function `modified_equation` traces.
    """
    r = as_rule(rule)
    if len(r.blocks) != 1:
        raise BeaValueError(
            f"rule {r.name!r} has blocks {r.blocks}; use game_principal_flow for "
            "rules over several players"
        )
    x, lam = sp.Symbol("_x"), sp.Symbol("_lambda")

    def linear(name, point, sample=None):
        return lam * point

    out = call_rule(r.update, x, H, linear, linear)
    R = sp.expand(sp.cancel(sp.sympify(out) / x).subs(lam, Z / H))
    if R.has(H) or R.has(x):
        raise BeaValueError(
            f"rule {r.name!r} on a quadratic gives {R}, not a function of z = h*lambda "
            "alone; the principal flow needs steps that are h times an oracle value"
        )
    return R


def _real_regions(R: sp.Expr) -> tuple[sp.Set | None, sp.Set | None, tuple]:
    """Real z with |R| < 1, real z with R < 0, and the real roots of R (exact)."""
    if R.free_symbols - {Z}:
        return None, None, ()
    zr = sp.Symbol("z", real=True)

    def where(poly_expr, test):
        roots = sorted(set(sp.Poly(poly_expr, Z).real_roots()), key=lambda v: float(v))
        cuts = [-sp.oo, *roots, sp.oo]
        out = sp.S.EmptySet
        for a, b in itertools.pairwise(cuts):
            if a == -sp.oo and b == sp.oo:
                mid = sp.Integer(0)
            elif a == -sp.oo:
                mid = sp.floor(b.evalf(30)) - 1
            elif b == sp.oo:
                mid = sp.ceiling(a.evalf(30)) + 1
            else:
                mid = sp.nsimplify((a.evalf(40) + b.evalf(40)) / 2, rational=True)
            if test(R.subs(Z, mid)):
                out = sp.Union(out, sp.Interval.open(a, b))
        return out.subs(zr, Z)

    stable = where(sp.expand(R**2 - 1), lambda v: abs(v) < 1)
    oscillating = where(R, lambda v: v < 0)
    singular = tuple(sorted(set(sp.Poly(R, Z).real_roots()), key=lambda v: float(v)))
    return stable, oscillating, singular


@dataclass(frozen=True)
class PrincipalFlow:
    """The principal flow of a one-block rule, from its series and on a quadratic.

    Arguments:
        rule: the rule's name.
        order: N, the order of the engine's series used.
        time: the time T = c h one call covers.
        kind: "grad" (z = h lambda, lambda a Hessian eigenvalue of E) or "field"
            (z = h mu, mu an eigenvalue of the field's Jacobian).
        chain: S_0, ..., S_N from the engine (summed chain-tree coefficients).
        recognised: the closed form of sum_k S_k z^k found from `chain` alone, or None.
        recognised_as: "log", "rational" or "" (not recognised).
        R: one step on the quadratic, x' = R(z) x, traced from the rule.
        coefficient: s(z) = log(R(z))/(c z), the stability coefficient per
            eigendirection: theta_dot = sum_i s(h lambda_i) (g . u_i) u_i.
        at_zero: s(0) = R'(0)/c, the gradient-flow value (-1 for gd).
        series_matches: the Taylor coefficients of s(z) equal `chain`.
        closed_form_matches: `recognised` equals s(z) (exactly, as an identity in z).
        stable: real z with |R(z)| < 1 (iterates contract), or None with parameters.
        oscillating: real z with R(z) < 0 (the flow is complex: log R = log|R| + i pi).
        singular: real roots of R (the map collapses a direction; log R undefined).

    The rule is stable for an eigenvalue whose z lies in `stable`; on the real axis
    Re s(z) = log|R(z)|/(c z) < 0 there for z > 0.
    """

    rule: str
    order: int
    time: sp.Expr
    kind: str
    chain: tuple[sp.Expr, ...]
    recognised: sp.Expr | None
    recognised_as: str
    R: sp.Expr
    coefficient: sp.Expr
    at_zero: sp.Expr
    series_matches: bool
    closed_form_matches: bool
    stable: sp.Set | None
    oscillating: sp.Set | None
    singular: tuple[sp.Expr, ...]

    @property
    def z(self) -> sp.Symbol:
        return Z

    def text(self) -> str:
        """A plain-text report (what `bea principal RULE` prints)."""
        var = (
            "z = h*lambda, lambda an eigenvalue of the Hessian of E (grad E(x) = lambda x)"
            if self.kind == "grad"
            else "z = h*mu, mu an eigenvalue of the field's Jacobian (f(y) = mu y); "
            "gradient descent reading f = -grad E: z = -h*lambda"
        )
        shown = ", ".join(str(s) for s in self.chain[:6])
        more = ", ..." if len(self.chain) > 6 else ""
        lines = [
            f"principal flow of {self.rule} (time per step {self.time})",
            f"  {var}",
            f"  one step on a quadratic: x' = R(z) x,  R(z) = {self.R}",
            f"  flow per eigendirection: s(z) (oracle . u) u,  s(z) = {self.coefficient}",
            f"  s(0) = {self.at_zero}",
            f"  chain coefficients from the series (order {self.order}): {shown}{more}",
            f"  recognised from the series: {self.recognised if self.recognised_as else 'no'}"
            + (f" ({self.recognised_as})" if self.recognised_as else ""),
            f"  series of s(z) matches the engine: {'yes' if self.series_matches else 'NO'}",
            f"  closed form matches log(R(z))/(c z): {'yes' if self.closed_form_matches else 'no'}",
        ]
        if self.stable is None:
            lines.append("  stability region: |R(z)| < 1 (depends on the rule's parameters)")
        else:
            lines += [
                "  stable (|R(z)| < 1): "
                + _where(self.stable, "the iterates grow for every real z"),
                "  oscillating (R(z) < 0, complex flow): "
                + _where(self.oscillating, "never on the real axis (R(z) > 0 or 0 there)"),
                "  singular (R(z) = 0, log undefined): "
                + (
                    "at z = " + ", ".join(_show_num(v) for v in self.singular)
                    if self.singular
                    else "nowhere on the real axis (R(z) has no real root)"
                ),
            ]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.text()


def _show_num(v: sp.Expr) -> str:
    if v.is_Rational or v.is_infinite:
        return str(v)
    return f"{sp.N(v, 6)}"


def _where(s: sp.Set, empty: str) -> str:
    """`for real z in (a, b) u ...`, or `empty` for the empty set."""
    return empty if s is sp.S.EmptySet else f"for real z in {_show_set(s)}"


def _show_set(s: sp.Set) -> str:
    if s is sp.S.EmptySet:
        return "nowhere"
    parts = s.args if isinstance(s, sp.Union) else (s,)
    return " u ".join(f"({_show_num(p.start)}, {_show_num(p.end)})" for p in parts)


def principal_flow(rule: Rule | Callable, order: int = 10, *, force: bool = False) -> PrincipalFlow:
    """The principal flow of a one-block rule, in closed form, with its stability.

    Arguments:
        rule: a `bea.Rule` or an update function `rule(theta, h, grad)`; all its
            oracles are read as the same quadratic (for `sgd(n)`: every mini-batch
            loss equal).
        order: the order of the modified equation whose chain terms are summed; the
            closed form needs about twice the degree of R(z) plus two (>= 10 for rk4).
        force: derive even when the tree count exceeds `bea.MAX_TREES` (rules with
            several losses, such as `sgd(n)`, need many trees at high order).

    Returns:
        A `PrincipalFlow`: the chain coefficients S_k, their recognised generating
        function, R(z) from the rule on a quadratic, s(z) = log(R(z))/(c z), the
        checks that they agree, and the real stability and oscillation regions.

    Example:
        >>> import bea
        >>> pf = principal_flow(bea.rules.gd, order=6)
        >>> pf.coefficient, pf.stable, pf.oscillating
        (log(1 - z)/z, Interval.open(0, 2), Interval.open(1, oo))
    """
    r = over_trees(as_rule(rule), "the principal flow")
    if takes_time(r):
        raise BeaValueError(
            f"rule {r.name!r} reads the time t (a schedule); the principal flow is derived for "
            "rules at a constant step, so fix the schedule's value"
        )
    check_integer(order, "order", 1)
    reserved_symbols(r, ("z", "h"))
    if r.memory:
        return memory_principal_flow(r, order, force=force)
    meq = modified_equation(r, order, force=force)
    kinds = {o.kind for o in meq.oracles}
    if len(meq.blocks) != 1:
        raise BeaValueError(
            f"rule {r.name!r} has blocks {meq.blocks}; use game_principal_flow for "
            "rules over several players"
        )
    c = r.time_factor
    chain = chain_coefficients(meq)
    used = {x.name for c_k in chain for x in sp.sympify(c_k).free_symbols}
    if used & {"z", "h"}:
        raise BeaValueError(
            f"rule {r.name!r} uses a symbol named {sorted(used & {'z', 'h'})[0]!r} in its "
            "coefficients, which the principal flow reserves (z, h); rename that symbol"
        )
    R = quadratic_map(r)
    if sp.expand(R.subs(Z, 0)) != 1:
        raise BeaValueError(f"rule {r.name!r} gives R(0) = {R.subs(Z, 0)}; a rule must fix h = 0")
    coefficient = sp.log(R) / (c * Z)
    taylor = sp.series(coefficient, Z, 0, order + 1).removeO()
    series_matches = all(sp.simplify(taylor.coeff(Z, k) - s) == 0 for k, s in enumerate(chain))
    found = recognise_generating_function(chain, c)
    recognised_as, recognised = found if found else ("", None)
    closed_ok = False
    if recognised is not None and recognised_as == "log":
        # log(prod Q_i^m_i) = log R  <=>  prod Q_i^m_i = R (both are 1 at z = 0)
        arg = sp.expand_log(recognised * c * Z, force=True)
        closed_ok = sp.simplify(sp.exp(arg) - R) == 0
    stable, oscillating, singular = _real_regions(R)
    return PrincipalFlow(
        rule=r.name,
        order=order,
        time=sp.sympify(r.time),
        kind="field" if kinds == {"field"} else "grad",
        chain=chain,
        recognised=recognised,
        recognised_as=recognised_as,
        R=R,
        coefficient=coefficient,
        at_zero=sp.simplify(sp.diff(R, Z).subs(Z, 0) / c),
        series_matches=series_matches,
        closed_form_matches=closed_ok,
        stable=stable,
        oscillating=oscillating,
        singular=singular,
    )
