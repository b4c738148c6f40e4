"""Modified losses of preconditioned coordinate-wise fields.

An adaptive rule's field is, at leading order, a preconditioned gradient
f̃ = −P(θ)⁻¹ ∇E with a diagonal P (RMSProp: P = √(∇E² + ε); Adam as ε → 0:
P = |∇E|, elementwise). Its modified equation is a preconditioned gradient flow
θ̇ = −P⁻¹ ∇Ẽ exactly when, order by order in h, w = P f̃ is a gradient. The test is
exact: the Jacobian of each order's w, in the partial derivatives of E (total
derivatives, ∂ⱼ E_α = E_{α j}), must be symmetric, ∂ⱼ wᵢ = ∂ᵢ wⱼ. When it is, Ẽ is
reconstructed: terms of w linear in second derivatives, wᵢ = Σⱼ cⱼ(∇E) ∂ᵢ∂ⱼE + kᵢ,
come from a function S(∇E) with ∂S/∂(∂ⱼE) = −cⱼ, found by integrating one
variable at a time; what remains must be −k ∂ᵢE (a multiple of E itself). Orders
whose w involves third derivatives are not reconstructed (an error says so).

Cattaneo, Klusowski and Shigida ("On the implicit bias of Adam", ICML 2024) state
Adam's ε → 0, full-batch modified loss with P = |∇E| and a penalty proportional to
‖∇E‖₁ = Σ sign(∂ᵢE) ∂ᵢE; `tests/test_coordinate.py` derives it with this module.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .._core._errors import BeaValueError, NotAGradientError
from .._core._scalars import H

__all__ = ["CoordinateModifiedLoss", "coordinate_modified_loss"]


@dataclass(frozen=True)
class CoordinateModifiedLoss:
    """Ẽ = Σ_p h^p terms[p] with field = −P⁻¹ ∇Ẽ (P diagonal, per coordinate).

    Arguments:
        rule: the rule's name. order: N. preconditioner: P's diagonal.
        terms: the h^p terms of Ẽ (terms[0] is E for a consistent rule).
        loss_symbol: the symbol standing for E itself.
    """

    rule: str
    order: int
    preconditioner: tuple[sp.Expr, ...]
    terms: tuple[sp.Expr, ...]
    loss_symbol: sp.Symbol

    @property
    def total(self) -> sp.Expr:
        return sp.Add(*(H**p * t for p, t in enumerate(self.terms)))

    def text(self) -> str:
        """`Ẽ = E + h (…) + …`, with the preconditioner it is a loss for."""
        parts = [
            sp.sstr(t) if p == 0 else f"{_power(p)} ({sp.sstr(sp.factor(t))})"
            for p, t in enumerate(self.terms)
            if t != 0
        ]
        lines = [
            f"{self.rule}: modified loss to order {self.order} in h, field = −P⁻¹ ∇Ẽ",
            f"Ẽ = {' + '.join(parts) or '0'}",
            "P = diag(" + ", ".join(sp.sstr(p) for p in self.preconditioner) + ")",
        ]
        return "\n".join(lines)

    def latex(self) -> str:
        """Ẽ in LaTeX."""
        parts = [
            sp.latex(t) if p == 0 else rf"{_power(p, True)} \left({sp.latex(sp.factor(t))}\right)"
            for p, t in enumerate(self.terms)
            if t != 0
        ]
        return r"\tilde{E} = " + (" + ".join(parts) or "0")

    def to_dict(self) -> dict:
        """Plain data: expressions as SymPy strings."""
        return {
            "rule": self.rule,
            "order": self.order,
            "preconditioner": [str(p) for p in self.preconditioner],
            "terms": {str(p): str(t) for p, t in enumerate(self.terms)},
        }

    def __str__(self) -> str:
        return self.text()

    def _repr_latex_(self) -> str:
        return f"${self.latex()}$"


def _power(p: int, latex: bool = False) -> str:
    if latex:
        return "h" if p == 1 else f"h^{{{p}}}"
    return "h" if p == 1 else "h" + str(p).translate(str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹"))


class _Jet:
    """Total derivatives in the partial-derivative symbols of one loss."""

    def __init__(self, meq, loss: str):
        self.meq = meq
        self.loss = loss
        self.by_idx = {}
        self.idx_of = {}
        for s, (name, idx) in meq.derivatives:
            if name == loss:
                self.by_idx[tuple(idx)] = s
                self.idx_of[s] = tuple(idx)
        self.E = sp.Symbol(loss, real=True)
        self.by_idx[()] = self.E
        self.idx_of[self.E] = ()
        self.signs = [v for _, v in meq.signs if isinstance(v, sp.Symbol)]
        self.sep = "" if meq.dimension < 10 else ","

    def sym(self, idx) -> sp.Symbol:
        idx = tuple(sorted(idx))
        if idx not in self.by_idx:
            name = f"{self.loss}_{self.sep.join(str(i + 1) for i in idx)}"
            s = sp.Symbol(name, real=True)
            self.by_idx[idx] = s
            self.idx_of[s] = idx
        return self.by_idx[idx]

    def D(self, expr, j):
        out = sp.diff(expr, self.meq.coordinates[j])
        for s in expr.free_symbols:
            if s in self.idx_of:
                out += sp.diff(expr, s) * self.sym((*self.idx_of[s], j))
        return out

    def reduce(self, expr):
        expr = sp.expand(expr)
        if self.signs and expr.has(*self.signs):
            expr = expr.replace(
                lambda e: e.is_Pow and e.base in self.signs and e.exp.is_Integer,
                lambda e: e.base ** (int(e.exp) % 2),
            )
        return expr

    def is_zero(self, expr) -> bool:
        expr = self.reduce(expr)
        if expr == 0:
            return True
        num = self.reduce(sp.numer(sp.together(expr)))
        return num == 0 or sp.simplify(num) == 0


def _preconditioner(meq, preconditioner, jet):
    d = meq.dimension
    if preconditioner is None:
        return tuple(sp.S.One for _ in range(d))
    if preconditioner == "abs_grad":
        signs = dict(meq.signs)
        out = []
        for i in range(d):
            if (jet.loss, i) not in signs:
                raise BeaValueError(
                    "preconditioner='abs_grad' needs the signs of ∂ᵢE; derive the equation "
                    "with region=bea.CoordinateRegion(signs='symbolic')"
                )
            out.append(signs[(jet.loss, i)] * jet.sym((i,)))
        return tuple(out)
    p = tuple(preconditioner)
    if len(p) != d or not all(isinstance(e, sp.Expr) for e in p):
        raise BeaValueError(
            f"preconditioner must be None, 'abs_grad' or {d} SymPy expressions (P's diagonal)"
        )
    return p


def _integrate_in(jet, coeffs, gvars):
    """S with ∂S/∂g_j = coeffs[j] (one variable at a time), or None."""
    S = sp.S.Zero
    for j, g in enumerate(gvars):
        rest = sp.simplify(coeffs[j] - sp.diff(S, g))
        if any(sp.diff(rest, gk) != 0 for gk in gvars[:j]):
            return None
        S += sp.integrate(rest, g)
    return S


def coordinate_modified_loss(meq, preconditioner=None, loss: str = "E") -> CoordinateModifiedLoss:
    """The loss Ẽ with field = −P⁻¹ ∇Ẽ, or `NotAGradientError` naming the failing order.

    What `bea.modified_loss(meq, preconditioner=...)` returns for an equation over the
    coordinate basis (`bea.coordinate_modified_loss` is its former public name).

    Arguments:
        meq: a `ModifiedEquation` over the coordinate basis with an undefined loss.
        preconditioner: P's diagonal: None (P = I), `"abs_grad"` (|∂ᵢE| = s_i ∂ᵢE, needs
            declared signs), or d SymPy expressions in the partial-derivative symbols.
        loss: the loss whose derivatives the field is written in.

    Returns:
        A `CoordinateModifiedLoss`; `terms[p]` uses `E` for the loss itself, `E_i` for ∂ᵢE
        and `s_i` for sign ∂ᵢE.

    Example:
        >>> import bea
        >>> meq = bea.modified_equation(bea.rules.signgd, 1, dimension=2,
        ...                             region={"signs": "symbolic"})
        >>> bea.modified_loss(meq, preconditioner="abs_grad").terms
        (E, 0)
    """
    jet = _Jet(meq, loss)
    P = _preconditioner(meq, preconditioner, jet)
    d = meq.dimension
    gvars = [jet.sym((i,)) for i in range(d)]
    terms = []
    for p in range(meq.order + 1):
        w = [jet.reduce(P[i] * meq.field[p][i]) for i in range(d)]
        for i in range(d):
            for j in range(i + 1, d):
                curl = jet.D(w[i], j) - jet.D(w[j], i)
                if not jet.is_zero(curl):
                    raise NotAGradientError(
                        f"P·f̃ of rule {meq.rule!r} at order h^{p} is not a gradient: "
                        f"∂{j + 1}(P f̃)_{i + 1} − ∂{i + 1}(P f̃)_{j + 1} = "
                        f"{sp.factor(jet.reduce(curl))} ≠ 0, so no loss Ẽ has "
                        "field = −P⁻¹∇Ẽ at this order; try another preconditioner",
                        obstructions=((p, i, j, curl),),
                        decomposition=None,
                    )
        terms.append(_potential(jet, w, gvars, p, meq.rule))
    return CoordinateModifiedLoss(meq.rule, meq.order, P, tuple(terms), jet.E)


def _potential(jet, w, gvars, p, rule):
    d = len(w)
    if any(len(jet.idx_of.get(s, ())) >= 3 for e in w for s in e.free_symbols):
        raise BeaValueError(
            f"P·f̃ of rule {rule!r} at order h^{p} involves third derivatives of the loss; "
            "its potential is not reconstructed (the Jacobian is symmetric, so it exists)"
        )
    # second-derivative coefficients, read off coordinate 1: ∂S/∂(∂ⱼE) = −coeff of ∂₁∂ⱼE
    second = [jet.sym((0, j)) for j in range(d)]
    w0 = sp.expand(w[0])
    coeffs = [-w0.coeff(second[j]) for j in range(d)]
    S = _integrate_in(jet, coeffs, gvars) if any(c != 0 for c in coeffs) else sp.S.Zero
    if S is None:
        raise BeaValueError(f"the potential of rule {rule!r} at order h^{p} was not found")
    rest = [jet.reduce(-w[i] - jet.D(S, i)) for i in range(d)]
    k = sp.simplify(rest[0] / gvars[0]) if rest[0] != 0 else sp.S.Zero
    S = S + k * jet.E
    for i in range(d):
        if not jet.is_zero(-w[i] - jet.D(S, i)):
            raise BeaValueError(
                f"the potential of rule {rule!r} at order h^{p} was not found in terms of E "
                "and its gradient"
            )
    return _tidy(jet, S, gvars)


def _tidy(jet, S, gvars):
    """Σ_j (factored coefficient) ∂ⱼE + (multiple of E), with 1/s_i written s_i."""
    S = sp.expand(S)
    parts = sp.collect(S, [jet.E, *gvars], evaluate=False)
    out = sp.S.Zero
    for mono, c in parts.items():
        c = sp.factor(c)
        if jet.signs:
            c = c.replace(
                lambda e: e.is_Pow and e.base in jet.signs and e.exp.is_Integer,
                lambda e: e.base ** (int(e.exp) % 2),
            )
        out += c * mono
    return out
