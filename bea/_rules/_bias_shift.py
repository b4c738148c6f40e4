"""The start-up shift of Adam in the fixed-β limit, with and without bias correction.

With β₁, β₂ fixed and h → 0, Adam's memory relaxes to its slow manifold in
O(1/(1 − β)) steps, and `bea.modified_equation(bea.rules.adam, N)` is the flow on
that manifold: from θ₀ it describes, to O(h^(N+1)) over a fixed time, the iterates of
the bias-free rule started *on* the manifold, m = M_h(θ₀), v = V_h(θ₀)
(`numeric.on_manifold`), and neither Adam from m = v = 0 (an error O(h)) nor
bias-corrected Adam (an error O(h²)). Iterates started from θ₀ with m = v = 0
(and, for bias correction (Kingma and Ba, ICLR 2015), p = βⁿ = 1) reach the
manifold off the flow line through θ₀: they shadow the *same* bias-free modified
flow started at a shifted point θ₀ + σ, with |θₙ − φ_{nh}(θ₀ + σ)| exponentially
small in n plus the truncation error of the equation: θ₀ + σ is the asymptotic phase
of the start on the attracting slow manifold (the fibre of Fenichel's invariant
foliation through it).
The modified equation itself is the fixed-β one of Cattaneo, Klusowski and Shigida
(ICML 2024); σ is derived here per coordinate at its leading power of h, by matching
the iterates to the manifold's iterates step by step over the transient.

Notation (per coordinate i, products and roots elementwise): g = ∇E(θ₀), the step
direction D(m, v) = m/√(v + ε) (`eps_in_sqrt=True`, bea's default) or m/(√v + ε),
u = D(g, g²) the leading-order step of the flow (θ̇ = −u + O(h)), and
(Hu)ᵢ = Σⱼ ∂ᵢ∂ⱼE(θ₀) uⱼ.

Without bias correction (m_k = (1 − β₁ᵏ) g, v_k = (1 − β₂ᵏ) g² over the transient,
the gradient constant to leading order):

    σᵢ = h Σ_{k≥1} [D(gᵢ, gᵢ²) − D((1 − β₁ᵏ) gᵢ, (1 − β₂ᵏ) gᵢ²)] + O(h²),

a delay along the flow where the early steps are shorter than u (σ points up the
gradient), an advance where they are longer (β₂ > β₁ with a small ε, whose early v
is small against g²). When the second moment plays no role (ε → ∞, or β₂ = 0) the
sum is β₁/(1 − β₁) steps: a delay of time hβ₁/(1 − β₁).

With bias correction m̂_k = g, v̂_k = g² for a constant gradient, so the O(h) term
vanishes. At O(h²) the bias-corrected averages lag the gradient by less than the
stationary averages do: after k steps the mean age of m̂'s gradients is
L_k = β/(1 − β) − kβᵏ/(1 − βᵏ), against β/(1 − β) on the manifold. With
g(θ_{j−1}) = g − (j − 1) h Hu + O(h²) this gives

    σᵢ = h² (Hu)ᵢ [S(β₁) ∂_m D + 2 gᵢ S(β₂) ∂_v D] + O(h³),
    S(β) = Σ_{k≥1} k βᵏ/(1 − βᵏ),

the partial derivatives of D taken at (gᵢ, gᵢ²) (for ε inside the root
∂_m D = 1/√(g² + ε), 2 g ∂_v D = −g²/(g² + ε)^{3/2}). S is a Lambert series with no
closed form; it is kept as a SymPy `Sum`, evaluated by `numeric.bias_correction_shift`.

Both are series in h/(1 − β) (S(β) grows like π²/(6 (1 − β)²)), valid for h ≪ 1 − β,
as the fixed-β modified equation itself is. A flow of order N ≥ power started at
θ₀ + σ has global error O(h^(power+1)) over a fixed time; started at θ₀ its error is
O(h^power).
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .._core._errors import BeaTypeError, BeaValueError

__all__ = ["BiasShift", "bias_correction_shift"]

BETA1 = sp.Symbol("beta1", positive=True)
BETA2 = sp.Symbol("beta2", positive=True)
EPS = sp.Symbol("eps", positive=True)
K = sp.Symbol("k", integer=True, positive=True)
"""The step index of the transient's sums."""
G = sp.Symbol("g", real=True)
"""A coordinate of the gradient at the start, gᵢ = ∂ᵢE(θ₀)."""
HU = sp.Symbol("Hu", real=True)
"""(Hu)ᵢ = Σⱼ ∂ᵢ∂ⱼE(θ₀) uⱼ, u = D(g, g²) the leading step of the flow."""


@dataclass(frozen=True)
class BiasShift:
    """The start of the bias-free modified flow that Adam's iterates shadow (fixed β).

    The flow of `bea.modified_equation(bea.rules.adam_rule(beta1, beta2, eps), N)`,
    N ≥ `power`, started at θ₀ + σ with σᵢ = h^power · `coefficient` (at g = gᵢ,
    Hu = (Hu)ᵢ) follows the iterates from θ₀ (m = v = 0) with global error
    O(h^(power + 1)) over a fixed time (see `bea._rules._bias_shift`).

    Attributes:
        power: the power of h of the shift: 1 without bias correction, 2 with it.
        coefficient: a SymPy expression in `g` (gᵢ) and, for power 2, `Hu` ((Hu)ᵢ),
            holding `Sum`s over the step index `k` from 1 to oo.
        bias_correction: whether the iterates are bias-corrected.
        params: `(("beta1", β₁), ("beta2", β₂), ("eps", ε))`.
        eps_in_sqrt: ε inside the square root (m/√(v + ε)) or outside (m/(√v + ε)).
    """

    power: int
    coefficient: sp.Expr
    bias_correction: bool
    params: tuple
    eps_in_sqrt: bool = True

    g = G
    Hu = HU
    k = K

    def doit(self) -> BiasShift:
        """The shift with the sums SymPy can evaluate in closed form evaluated."""
        return BiasShift(
            self.power,
            sp.simplify(self.coefficient.doit()),
            self.bias_correction,
            self.params,
            self.eps_in_sqrt,
        )


def _direction(m, v, eps, eps_in_sqrt: bool):
    return m / sp.sqrt(v + eps) if eps_in_sqrt else m / (sp.sqrt(v) + eps)


def lambert(beta) -> sp.Sum:
    """S(β) = Σ_{k≥1} k βᵏ/(1 − βᵏ), kept as an unevaluated `Sum`."""
    return sp.Sum(K * beta**K / (1 - beta**K), (K, 1, sp.oo))


def _exact(name: str, value):
    """`value` as an exact SymPy number or expression, else one sentence."""
    if isinstance(value, float) or (isinstance(value, sp.Basic) and value.has(sp.Float)):
        raise BeaTypeError(
            f"{name}={value!r} is a float; pass an exact number (sympy.Rational(9, 10)) or "
            "a symbol, and the floats to numeric.bias_correction_shift as params"
        )
    try:
        value = sp.sympify(value)
    except (sp.SympifyError, TypeError):
        raise BeaTypeError(
            f"{name}={value!r} is not a number or symbol; pass e.g. sympy.Rational(9, 10)"
        ) from None
    if value.is_number and not (
        value.is_real and (0 <= value < 1 if name != "eps" else value >= 0)
    ):
        rng = "in [0, 1)" if name != "eps" else ">= 0"
        raise BeaValueError(f"{name}={value} is out of range; it must be {rng}")
    return value


def bias_correction_shift(
    beta1=BETA1,
    beta2=BETA2,
    eps=EPS,
    *,
    bias_correction: bool = True,
    eps_in_sqrt: bool = True,
) -> BiasShift:
    """The start-up shift σ of Adam in the fixed-β limit (module docs for the derivation).

    Adam's iterates from θ₀ (m = v = 0) shadow the bias-free modified flow
    (`bea.modified_equation(bea.rules.adam_rule(beta1, beta2, eps), N)`) started at
    θ₀ + σ, not at θ₀:

    - `bias_correction=False`: σᵢ = h Σ_{k≥1} [D(gᵢ, gᵢ²) − D((1 − β₁ᵏ) gᵢ,
      (1 − β₂ᵏ) gᵢ²)] + O(h²), D(m, v) = m/√(v + ε); a delay of hβ₁/(1 − β₁) in
      time when v plays no role;
    - `bias_correction=True` (optax `adam`): the O(h) shift vanishes and
      σᵢ = h² (Hu)ᵢ [S(β₁) ∂_m D + 2 gᵢ S(β₂) ∂_v D] + O(h³),
      S(β) = Σ_{k≥1} k βᵏ/(1 − βᵏ), u = D(g, g²).

    Arguments:
        beta1, beta2, eps: Adam's parameters, symbols or exact numbers.
        bias_correction: whether the iterates are bias-corrected (Kingma and Ba 2015).
        eps_in_sqrt: ε inside the root (bea's default) or outside (optax's `eps`).

    Returns:
        A `BiasShift`: σᵢ = h^power · coefficient(g = gᵢ, Hu = (Hu)ᵢ).

    Example:
        >>> import sympy as sp
        >>> s = bias_correction_shift(sp.Rational(1, 2), 0, bias_correction=False).doit()
        >>> s.power, s.coefficient
        (1, g/sqrt(eps + g**2))
    """
    for name, flag in (("bias_correction", bias_correction), ("eps_in_sqrt", eps_in_sqrt)):
        if flag is not True and flag is not False:
            raise BeaTypeError(f"{name}={flag!r} must be True or False")
    b1, b2, e = _exact("beta1", beta1), _exact("beta2", beta2), _exact("eps", eps)
    params = (("beta1", b1), ("beta2", b2), ("eps", e))
    if not bias_correction:
        step = _direction(G, G**2, e, eps_in_sqrt)
        early = _direction((1 - b1**K) * G, (1 - b2**K) * G**2, e, eps_in_sqrt)
        return BiasShift(1, sp.Sum(step - early, (K, 1, sp.oo)), False, params, eps_in_sqrt)
    m, v = sp.Dummy("m"), sp.Dummy("v")
    d = _direction(m, v, e, eps_in_sqrt)
    at = {m: G, v: G**2}
    dm = sp.simplify(d.diff(m).subs(at))
    dv2 = sp.simplify(2 * G * d.diff(v).subs(at))
    coefficient = HU * (lambert(b1) * dm + lambert(b2) * dv2)
    return BiasShift(2, coefficient, True, params, eps_in_sqrt)
