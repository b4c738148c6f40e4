"""Built-in coordinate-wise rules: RMSProp, Adam, sign descent, clipping, normalised SAM.

Each is a factory returning a `bea.Rule`; parameters are SymPy symbols by default
(`rho`, `eps`, `beta1`, `beta2`, `c`) and may be exact numbers for a derivation or
floats for a numerical run (`numeric.coordinate_discrete_map` rebuilds the rule with
the numbers it is given). The update functions use `bea.ops`, so the same code is
traced by `bea.modified_equation` and run on JAX arrays.

Conventions (g = ∇E(θ), products, squares, square roots and quotients elementwise):

- `rmsprop(rho, eps)`: v' = ρ v + (1 − ρ) g², θ' = θ − h g / √(v' + ε)
  (optax `rmsprop(decay=rho, eps=eps)`, ε inside the root).
- `adam(beta1, beta2, eps)`: m' = β₁ m + (1 − β₁) g, v' = β₂ v + (1 − β₂) g²,
  θ' = θ − h m' / √(v' + ε) (optax `scale_by_adam(eps=0, eps_root=eps)` without its
  bias correction); `eps_in_sqrt=False` gives θ' = θ − h m' / (√v' + ε).
  `bias_correction=True` (Kingma and Ba, ICLR 2015) divides m', v' by 1 − β₁ⁿ,
  1 − β₂ⁿ at step n (optax `adam(eps=0, eps_root=eps)`): the powers pⱼ = βⱼⁿ are
  carried as two more memories, p₁' = β₁ p₁, p₂' = β₂ p₂ (p = 1 at the start), so the
  map is one rule iterated. In the state limit (`Rule.state_limit` on both decays)
  p₁, p₂ are state variables, pⱼ(t) = (1 − cⱼ h)^(t/h): the time-dependent factor.
  With a fixed β the slow manifold is p = 0, the bias-free rule; the derivation is
  refused there, and `bea.rules.bias_correction_shift` gives the start of the bias-free
  flow that the iterates shadow.
- `adamw(beta1, beta2, eps, weight_decay)`: Adam with decoupled weight decay λ,
  θ' = θ − h (m'/√(v' + ε) + λ θ) (optax `adamw`, without bias correction).
- `lion(beta1, beta2)`: θ' = θ − h sign(β₁ m + (1 − β₁) g), m' = β₂ m + (1 − β₂) g
  (optax `lion` without weight decay).
- `signgd()`: θ' = θ − h sign(g), on a region of declared signs of g.
- `clipped_gd(c)`: θ' = θ − h g min(1, c/‖g‖) (clipping by norm, threshold c on the
  gradient, i.e. c·h on the step); `mode="coordinate"` clips each component to
  [−c, c]. The region declares which branch holds.
- `normalised_sam(c)`: θ' = θ − h ∇E(θ + ρ g/‖g‖) with radius ρ = c h, so that the
  expansion stays one-parameter (Foret et al., ICLR 2021, with ρ scaled with h as in
  the backward error analysis of SAM by Compagnoni et al., 2023).
- `adagrad(eps)`: v' = v + g², θ' = θ − h g/√(v' + ε). Its memory accumulates
  (∂v'/∂v = 1): no contraction, no slow manifold; the engine refuses it.
"""

from __future__ import annotations

import sympy as sp

from .. import ops
from .._core._errors import BeaTypeError, BeaValueError
from .._core._scalars import H
from ._rule import Rule

__all__ = [
    "COORDINATE_RULES",
    "adagrad",
    "adam",
    "adamw",
    "clipped_gd",
    "lion",
    "normalised_sam",
    "rmsprop",
    "signgd",
]

RHO = sp.Symbol("rho", positive=True)
EPS = sp.Symbol("eps", positive=True)
BETA1 = sp.Symbol("beta1", positive=True)
BETA2 = sp.Symbol("beta2", positive=True)
C = sp.Symbol("c", positive=True)
LAMBDA = sp.Symbol("weight_decay", positive=True)


def _non_negative(name: str, value, rule: str) -> None:
    """Refuse a number below 0 for ε or a weight decay, which sits under a square root or
    would make the decay a growth (a symbol, or an expression in h, passes)."""
    try:
        number = None if getattr(value, "free_symbols", None) else float(value)
    except (TypeError, ValueError):
        return
    if number is not None and not number >= 0:  # NaN too
        raise BeaValueError(
            f"{rule}({name}={value}) is out of its domain: {name} must be >= 0 (it sits "
            f"under the square root of the update); give e.g. {name}=1e-8"
            if name == "eps"
            else f"{rule}({name}={value}) is out of its domain: {name} must be >= 0"
        )


def rmsprop(rho=RHO, eps=EPS) -> Rule:
    """RMSProp: v' = ρ v + (1 − ρ) g², θ' = θ − h g/√(v' + ε) (memory `v`).

    Example:
        >>> rmsprop().memory
        ('v',)
    """
    _non_negative("eps", eps, "rmsprop")

    def update(theta, v, h, grad):
        g = grad("E", theta)
        v = rho * v + (1 - rho) * g * g
        return theta - h * g / ops.sqrt(v + eps), v

    return Rule(
        update=update,
        family="coordinate",
        name="rmsprop",
        params=(("rho", rho), ("eps", eps)),
        factory=rmsprop,
        description="RMSProp, eps inside the square root (optax rmsprop)",
        memory=("v",),
    )


def adam(
    beta1=BETA1, beta2=BETA2, eps=EPS, *, eps_in_sqrt: bool = True, bias_correction: bool = False
) -> Rule:
    """Adam (memory `m`, `v`); see the module for conventions.

    With `bias_correction=True` (Kingma and Ba, ICLR 2015) the memory is `m`, `v`,
    `p1`, `p2`, with pⱼ = βⱼⁿ after n steps (start from p1 = p2 = 1, m = v = 0):

        m' = β₁ m + (1 − β₁) g,  v' = β₂ v + (1 − β₂) g²,  p₁' = β₁ p₁,  p₂' = β₂ p₂,
        θ' = θ − h m̂/√(v̂ + ε),  m̂ = m'/(1 − p₁'),  v̂ = v'/(1 − p₂')

    (`eps_in_sqrt=False`: θ' = θ − h m̂/(√v̂ + ε), optax `adam(eps=eps)`). Its modified
    equation is derived in the state limit only (`rule.state_limit(beta1=..., beta2=...)`,
    βⱼ = 1 − cⱼ h; Malladi, Lyu, Panigrahi and Arora, NeurIPS 2022), a field of the
    joint state (θ, m, v, p₁, p₂):

        θ̇ = −m̂/√(v̂ + ε) + O(h),  ṁ = c₁ (g − m) + O(h),  v̇ = c₂ (g² − v) + O(h),
        ṗⱼ = log(1 − cⱼ h)/h · pⱼ = −cⱼ pⱼ − h cⱼ² pⱼ/2 − h² cⱼ³ pⱼ/3 − ...

    p decouples, so along the flow pⱼ(t) = (1 − cⱼ h)^(t/h) exactly (t = n h), and the
    equation of (θ, m, v) has the time-dependent coefficients
    1/(1 − pⱼ(t)) = 1/(1 − e^(−cⱼ t)) − h cⱼ² t e^(−cⱼ t)/(2 (1 − e^(−cⱼ t))²) + O(h²):
    with t as a state variable through pⱼ(t), the equation a rule reading t would give.
    They are singular at t = 0, so a local error is measured from a state at t₀ > 0.
    With a fixed β the derivation is refused: the slow manifold is p = 0, where the
    rule is the bias-free one, and the iterates from p = 1 shadow the bias-free flow
    from a shifted start (`bea.rules.bias_correction_shift`).

    Example:
        >>> adam().memory, adam(bias_correction=True).memory
        (('m', 'v'), ('m', 'v', 'p1', 'p2'))
    """
    _non_negative("eps", eps, "adam")
    if bias_correction is not False and bias_correction is not True:
        raise BeaTypeError(f"adam(bias_correction={bias_correction!r}) must be True or False")
    if bias_correction:
        return _adam_bias_corrected(beta1, beta2, eps, eps_in_sqrt)

    def update(theta, m, v, h, grad):
        g = grad("E", theta)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        denom = ops.sqrt(v + eps) if eps_in_sqrt else ops.sqrt(v) + eps
        return theta - h * m / denom, m, v

    def factory(beta1=beta1, beta2=beta2, eps=eps):
        return adam(beta1, beta2, eps, eps_in_sqrt=eps_in_sqrt)

    return Rule(
        update=update,
        family="coordinate",
        name="adam",
        params=(("beta1", beta1), ("beta2", beta2), ("eps", eps)),
        factory=factory,
        description="Adam without bias correction",
        memory=("m", "v"),
    )


def _fixed_decay(beta) -> bool:
    """Whether a decay traced symbolically is fixed (free of h): not a state limit.
    Numbers a numerical run binds (floats, JAX values) are never refused."""
    return isinstance(beta, sp.Basic) and not beta.has(H)


def _adam_bias_corrected(beta1, beta2, eps, eps_in_sqrt: bool) -> Rule:
    """`adam(bias_correction=True)`: the powers βⱼⁿ in the memory (see `adam`)."""

    def update(theta, m, v, p1, p2, h, grad):
        if _fixed_decay(beta1) or _fixed_decay(beta2):
            raise BeaValueError(
                "adam(bias_correction=True) with a fixed beta1 or beta2 has no modified "
                "equation of its own (its slow manifold is the bias-free rule); derive "
                "bea.rules.adam with bea.rules.bias_correction_shift(...) for the shifted start, "
                "or take rule.state_limit(beta1='c1', beta2='c2')"
            )
        g = grad("E", theta)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        p1 = beta1 * p1
        p2 = beta2 * p2
        # m̂/√(v̂ + ε) = m √(1 − p₂)/((1 − p₁) √(v + ε (1 − p₂))): one square root of a
        # polynomial, which keeps the derivation's expressions small
        if eps_in_sqrt:
            step = m * ops.sqrt(1 - p2) / ((1 - p1) * ops.sqrt(v + eps * (1 - p2)))
        else:
            step = m * ops.sqrt(1 - p2) / ((1 - p1) * (ops.sqrt(v) + eps * ops.sqrt(1 - p2)))
        return theta - h * step, m, v, p1, p2

    def factory(beta1=beta1, beta2=beta2, eps=eps):
        return adam(beta1, beta2, eps, eps_in_sqrt=eps_in_sqrt, bias_correction=True)

    return Rule(
        update=update,
        family="coordinate",
        name="adam_bias_corrected",
        params=(("beta1", beta1), ("beta2", beta2), ("eps", eps)),
        factory=factory,
        description="Adam with bias correction (p1, p2 = beta1^n, beta2^n in the memory)",
        memory=("m", "v", "p1", "p2"),
    )


def adamw(
    beta1=BETA1, beta2=BETA2, eps=EPS, weight_decay=LAMBDA, *, eps_in_sqrt: bool = True
) -> Rule:
    """AdamW: Adam with decoupled weight decay λ (Loshchilov and Hutter, ICLR 2019),
    θ' = θ − h (m'/√(v' + ε) + λ θ) (optax `adamw` without bias correction, with
    `eps_root`; `eps_in_sqrt=False` gives optax's default m'/(√v' + ε)).

    Example:
        >>> adamw().params[-1]
        ('weight_decay', weight_decay)
    """

    _non_negative("eps", eps, "adamw")
    _non_negative("weight_decay", weight_decay, "adamw")

    def update(theta, m, v, h, grad):
        g = grad("E", theta)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        denom = ops.sqrt(v + eps) if eps_in_sqrt else ops.sqrt(v) + eps
        return theta - h * (m / denom + weight_decay * theta), m, v

    def factory(beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay):
        return adamw(beta1, beta2, eps, weight_decay, eps_in_sqrt=eps_in_sqrt)

    return Rule(
        update=update,
        family="coordinate",
        name="adamw",
        params=(("beta1", beta1), ("beta2", beta2), ("eps", eps), ("weight_decay", weight_decay)),
        factory=factory,
        description="AdamW (decoupled weight decay) without bias correction",
        memory=("m", "v"),
    )


def lion(beta1=BETA1, beta2=BETA2) -> Rule:
    """Lion (Chen et al., NeurIPS 2023): θ' = θ − h sign(β₁ m + (1 − β₁) g),
    m' = β₂ m + (1 − β₂) g (optax `lion` without weight decay; memory `m`). On the slow
    manifold m = g + O(h) the sign is that of g on a region of fixed signs, to every
    order: there Lion follows sign descent.

    Example:
        >>> lion().memory
        ('m',)
    """

    def update(theta, m, h, grad):
        g = grad("E", theta)
        step = ops.sign(beta1 * m + (1 - beta1) * g)
        return theta - h * step, beta2 * m + (1 - beta2) * g

    def factory(beta1=beta1, beta2=beta2):
        return lion(beta1, beta2)

    return Rule(
        update=update,
        family="coordinate",
        name="lion",
        params=(("beta1", beta1), ("beta2", beta2)),
        factory=factory,
        description="Lion (sign of an interpolation of momentum and gradient)",
        memory=("m",),
    )


def signgd() -> Rule:
    """Sign descent θ' = θ − h sign(∇E) (needs a region of declared signs).

    Example:
        >>> signgd().name
        'signgd'
    """

    def update(theta, h, grad):
        return theta - h * ops.sign(grad("E", theta))

    return Rule(
        update=update,
        family="coordinate",
        name="signgd",
        factory=signgd,
        description="sign descent",
    )


def clipped_gd(c=C, *, mode: str = "norm") -> Rule:
    """Gradient descent with the gradient clipped at threshold c (by norm or per coordinate).

    On the region `choose="first"` the clip is inactive (plain gradient descent);
    `choose="second"` is the clipped branch.

    Example:
        >>> clipped_gd().params
        (('c', c),)
    """
    if mode not in ("norm", "coordinate"):
        raise BeaValueError(f"mode={mode!r} must be 'norm' or 'coordinate'")

    def update(theta, h, grad):
        g = grad("E", theta)
        if mode == "norm":
            return theta - h * g * ops.minimum(1, c / ops.norm(g))
        return theta - h * ops.maximum(-c, ops.minimum(g, c))

    def factory(c=c):
        return clipped_gd(c, mode=mode)

    return Rule(
        update=update,
        family="coordinate",
        name="clipped_gd",
        params=(("c", c),),
        factory=factory,
        description=f"gradient descent with {mode} clipping",
    )


def normalised_sam(c=C) -> Rule:
    """Normalised SAM with radius ρ = c h: θ' = θ − h ∇E(θ + c h ∇E/‖∇E‖).

    Example:
        >>> normalised_sam().params
        (('c', c),)
    """

    def update(theta, h, grad):
        g = grad("E", theta)
        return theta - h * grad("E", theta + c * h * g / ops.norm(g))

    return Rule(
        update=update,
        family="coordinate",
        name="normalised_sam",
        params=(("c", c),),
        factory=normalised_sam,
        description="normalised SAM, radius c*h",
    )


def adagrad(eps=EPS) -> Rule:
    """AdaGrad: v' = v + g², θ' = θ − h g/√(v' + ε) (refused by the derivation: no contraction).

    Example:
        >>> adagrad().memory
        ('v',)
    """

    def update(theta, v, h, grad):
        g = grad("E", theta)
        v = v + g * g
        return theta - h * g / ops.sqrt(v + eps), v

    return Rule(
        update=update,
        family="coordinate",
        name="adagrad",
        params=(("eps", eps),),
        factory=adagrad,
        description="AdaGrad (accumulating memory)",
        memory=("v",),
    )


COORDINATE_RULES: dict[str, Rule] = {
    r.name: r
    for r in (
        rmsprop(),
        adam(),
        adamw(),
        lion(),
        signgd(),
        clipped_gd(),
        normalised_sam(),
        adagrad(),
    )
}
"""The built-in coordinate-wise rules by name, with symbolic parameters."""

REGIONS: dict[str, dict] = {
    "signgd": {"signs": "symbolic"},
    "clipped_gd": {"choose": "second"},
}
"""The region a built-in non-smooth rule is derived on when none is declared on the
command line: symbolic signs for sign descent, the clipped branch for clipping."""
