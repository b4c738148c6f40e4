"""The modified loss of a stochastic modified equation's drift: implicit regularisers
of the noise.

The drift b of a rule with sampled oracles is −∇L̃ when its mean part is a gradient
(`bea.modified_loss` of `sme.mean_drift`) and each noise term is one: the term
Σ_j Cov(∂_ij E_γ, ∂_j E_γ) is ½ ∂_i tr Σ, with

    tr Σ(θ) = E_γ‖∇E_γ(θ) − ∇E(θ)‖²,

the trace of the gradient-noise covariance, so a drift term c h^p of it contributes
−(c/2) h^p tr Σ to L̃. SAM with one batch for both gradients gives
L̃ = E + (ρ/2 + 1/4) h ‖∇E‖² + (ρ/2) h tr Σ = E + h/4 ‖∇E‖² + (ρh/2) E_γ‖∇E_γ‖²
(consistent with Compagnoni et al., ICML 2023, whose SAM SDE regularises
E_γ‖∇E_γ‖²); extragradient with one batch gives −(h/2) tr Σ, an anti-regulariser.
Noise terms that are no gradient on their own (∇³E:Σ at order 2) are refused.

Example:
    >>> import bea
    >>> sme = bea.stochastic_modified_equation(bea.rules.sam, 1)
    >>> print(bea.modified_loss(sme))
    sam: modified loss of the drift of θ to order 1 in h (E drawn afresh each step)
    L~_θ = E
           + (ρ/2 + 1/4) h ‖∇E‖²
           + ρ/2 h tr Σ,   tr Σ = E_γ‖∇E_γ − ∇E‖²
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .._core._errors import BeaValueError
from .._core._scalars import H
from .._equation._stochastic import StochasticModifiedEquation
from .._printing._render import coefficient_text

__all__ = ["StochasticModifiedLoss", "stochastic_modified_loss"]

TRACE_TERM = "E~1[E~1]"
"""The drift term Σ_j Cov(∂_ij E_γ, ∂_j E_γ) = ½ ∇ tr Σ."""


@dataclass(frozen=True)
class StochasticModifiedLoss:
    """L̃ = mean + Σ_p c_p h^p tr Σ with b = −∇L̃ (see the module docs).

    Arguments:
        mean: the `bea.ModifiedLoss` of the drift's mean part.
        trace_terms: `(power, coefficient)`: c_p h^p tr Σ, coefficients as SymPy.
        sampled: the sampled loss.
    """

    mean: object
    trace_terms: tuple[tuple[int, sp.Expr], ...]
    sampled: str

    def trace_coefficient(self) -> sp.Expr:
        """Σ_p c_p h^p, the coefficient of tr Σ in L̃."""
        return sp.expand(sum((c * H**p for p, c in self.trace_terms), sp.Integer(0)))

    def text(self) -> str:
        lines = self.mean.text().splitlines()
        e = self.sampled
        lines[0] = (
            lines[0].replace("modified loss of", "modified loss of the drift of").split(" (")[0]
            + f" ({e} drawn afresh each step)"
        )
        pad = " " * (len(lines[-1]) - len(lines[-1].lstrip()))
        for p, c in self.trace_terms:
            sign = "-" if c.could_extract_minus_sign() else "+"
            mag = -c if sign == "-" else c
            coef = "" if mag == 1 else coefficient_text(mag) + " "
            hp = "" if p == 0 else ("h " if p == 1 else f"h^{p} ")
            lines.append(f"{pad}{sign} {coef}{hp}tr Σ,   tr Σ = E_γ‖∇{e}_γ − ∇{e}‖²")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.text()


def stochastic_modified_loss(sme: StochasticModifiedEquation, mean_loss) -> StochasticModifiedLoss:
    """The modified loss of `sme`'s drift (`bea.modified_loss(sme)`; module docs);
    `mean_loss(meq)` gives the `bea.ModifiedLoss` of `sme.mean_drift`, called once the
    noise terms are known to be gradients."""
    if len(sme.blocks) != 1 or len(sme.sampled) != 1:
        raise BeaValueError(
            f"rule {sme.rule!r}: the modified loss of a stochastic drift is derived for one "
            "player and one sampled loss"
        )
    name = sme.sampled[0]
    want = TRACE_TERM.replace("E", name)
    trace = []
    for spelled, p, c in sme.drift.spelled():
        if "~" not in spelled:
            continue
        if spelled != want:
            raise BeaValueError(
                f"the drift term {spelled} of rule {sme.rule!r} is not the gradient of a "
                "noise regulariser on its own; lower the order (order 1 has only ½ ∇ tr Σ)"
            )
        trace.append((p, -c / 2))
    return StochasticModifiedLoss(mean_loss(sme.mean_drift), tuple(trace), name)
