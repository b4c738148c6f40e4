"""Built-in update rules, each a short function in the same form users write.

Every rule here is a `Rule` built by a factory from its parameters, so the CLI can
rebuild it (`bea derive alternating --param m=2`) and Python can too
(`rules.alternating.with_params(m=2)`). Coefficients left symbolic stay symbolic.

Conventions:
* `gd`: theta' = theta - h grad E.
* `sgd(n)`: n ordered mini-batch losses E1..En, one step each; the flow covers n*h.
* `simultaneous`: phi' = phi + alpha h f(phi, theta), theta' = theta + lambda h g(phi, theta)
  (Rosca et al., ICML 2021), generic fields f, g.
* `alternating`: phi takes m steps of size alpha h/m, then theta takes k steps of size
  lambda h/k, each seeing the other player's newest value; m = k = 1 is the rule of
  Rosca et al. (ICML 2021).
* `extragradient`: theta' = theta - h grad E(theta - h grad E(theta)).
* `sam`: theta' = theta - h grad E(theta + rho h grad E(theta)) (unnormalised SAM).
* rules with memory (heavy ball, Nesterov, optimistic gradient, moving averages) and
  Lookahead: see `bea._rules._momentum`.
"""

from __future__ import annotations

import sympy as sp

from .._core._errors import BeaValueError
from .._core._scalars import H, exact_value
from ._momentum import (
    ema_momentum,
    heavy_ball,
    heavy_ball_game,
    lookahead,
    nesterov,
    nesterov_optax,
    optimistic,
    weight_average,
)
from ._rule import Rule, step_count
from ._runge_kutta import euler, heun, midpoint, rk4, runge_kutta

__all__ = [
    "RULES",
    "alternating",
    "ema_momentum",
    "euler",
    "extragradient",
    "gd",
    "general_sum_alternating",
    "general_sum_simultaneous",
    "get_rule",
    "heavy_ball",
    "heavy_ball_game",
    "heun",
    "lookahead",
    "midpoint",
    "nesterov",
    "nesterov_optax",
    "optimistic",
    "rk4",
    "runge_kutta",
    "sam",
    "sgd",
    "simultaneous",
    "weight_average",
    "zero_sum_alternating",
    "zero_sum_simultaneous",
]

ALPHA, LAMBDA, RHO = sp.symbols("alpha lambda rho")


def _gd() -> Rule:
    def gd(theta, h, grad):
        return theta - h * grad("E", theta)

    return Rule(gd, name="gd", factory=_gd, description="gradient descent on E")


def sgd(n: int = 2) -> Rule:
    """n steps of SGD over the ordered mini-batch losses E1, ..., En; flow over n*h."""
    n = step_count("n", n)

    def sgd_epoch(theta, h, grad):
        for i in range(1, n + 1):
            theta = theta - h * grad(f"E{i}", theta)
        return theta

    return Rule(
        sgd_epoch,
        name="sgd",
        time=n * H,
        params=(("n", n),),
        factory=lambda n=n: sgd(n),
        description="n ordered SGD steps on mini-batch losses E1..En, flow over n*h",
    )


def _simultaneous(alpha=ALPHA, lam=LAMBDA) -> Rule:
    alpha, lam = exact_value(alpha, "alpha"), exact_value(lam, "lambda")

    def simultaneous(state, h, field):
        phi, theta = state
        return (phi + alpha * h * field("f", state), theta + lam * h * field("g", state))

    return Rule(
        simultaneous,
        name="simultaneous",
        blocks=("phi", "theta"),
        params=(("alpha", alpha), ("lambda", lam)),
        factory=lambda **p: _simultaneous(p.get("alpha", alpha), p.get("lambda", lam)),
        description="two players, simultaneous Euler steps alpha*h*f and lambda*h*g",
        player_times=(alpha * H, lam * H),
    )


def _alternating(alpha=ALPHA, lam=LAMBDA, m=1, k=1) -> Rule:
    alpha, lam = exact_value(alpha, "alpha"), exact_value(lam, "lambda")
    m, k = step_count("m", m), step_count("k", k)

    def alternating(state, h, field):
        phi, theta = state
        for _ in range(m):
            phi = phi + alpha / m * h * field("f", (phi, theta))
        for _ in range(k):
            theta = theta + lam / k * h * field("g", (phi, theta))
        return phi, theta

    def rebuild(**p):
        return _alternating(
            p.get("alpha", alpha), p.get("lambda", lam), p.get("m", m), p.get("k", k)
        )

    return Rule(
        alternating,
        name="alternating",
        blocks=("phi", "theta"),
        params=(("alpha", alpha), ("lambda", lam), ("m", m), ("k", k)),
        factory=rebuild,
        description="two players, alternating: m phi-steps of alpha*h/m, then k theta-steps",
        player_times=(alpha * H, lam * H),
    )


def _game(kind: str, update: str, alpha=ALPHA, lam=LAMBDA, m=1, k=1) -> Rule:
    """Two-player games through gradient oracles.

    zero_sum: phi ascends E, theta descends E (L_phi = -E, L_theta = E, Rosca et al.'s
    f = grad_phi E, g = -grad_theta E). general_sum: both descend their own losses
    L1 (phi) and L2 (theta). `update` is "simultaneous" or "alternating" (m phi-steps
    of alpha h/m, then k theta-steps of lambda h/k seeing the new phi).
    """
    alpha, lam = exact_value(alpha, "alpha"), exact_value(lam, "lambda")
    m, k = step_count("m", m), step_count("k", k)
    if update == "simultaneous" and (m, k) != (1, 1):
        raise BeaValueError("m and k steps apply to alternating updates; use m=k=1")

    def velocity(grad, state, player: int):
        if kind == "zero_sum":
            g = grad("E", state)[player]
            return g if player == 0 else -g
        return -grad("L1" if player == 0 else "L2", state)[player]

    def simultaneous(state, h, grad):
        phi, theta = state
        return (phi + alpha * h * velocity(grad, state, 0),
                theta + lam * h * velocity(grad, state, 1))  # fmt: skip

    def alternating(state, h, grad):
        phi, theta = state
        for _ in range(m):
            phi = phi + alpha / m * h * velocity(grad, (phi, theta), 0)
        for _ in range(k):
            theta = theta + lam / k * h * velocity(grad, (phi, theta), 1)
        return phi, theta

    fn = simultaneous if update == "simultaneous" else alternating
    name = f"{kind}_{update}"
    fn.__name__ = name
    params = (("alpha", alpha), ("lambda", lam))
    if update == "alternating":
        params += (("m", m), ("k", k))
    losses = "E (phi ascends, theta descends)" if kind == "zero_sum" else "L1 (phi), L2 (theta)"
    return Rule(
        fn,
        name=name,
        blocks=("phi", "theta"),
        params=params,
        factory=lambda **p: _game(
            kind, update, p.get("alpha", alpha), p.get("lambda", lam), p.get("m", m), p.get("k", k)
        ),
        description=f"{kind.replace('_', '-')} game, {update} gradient steps on {losses}",
        player_times=(alpha * H, lam * H),
    )


def _extragradient() -> Rule:
    def extragradient(theta, h, grad):
        lookahead = theta - h * grad("E", theta)
        return theta - h * grad("E", lookahead)

    return Rule(
        extragradient,
        name="extragradient",
        factory=_extragradient,
        description="extragradient on E: a gradient step from the look-ahead point",
    )


def _sam(rho=RHO) -> Rule:
    rho = exact_value(rho, "rho")

    def sam(theta, h, grad):
        ascent = theta + rho * h * grad("E", theta)
        return theta - h * grad("E", ascent)

    return Rule(
        sam,
        name="sam",
        params=(("rho", rho),),
        factory=lambda **p: _sam(p.get("rho", rho)),
        description="sharpness-aware minimisation, unnormalised ascent step rho*h",
    )


gd = _gd()
simultaneous = _simultaneous()
alternating = _alternating()
extragradient = _extragradient()
sam = _sam()
zero_sum_simultaneous = _game("zero_sum", "simultaneous")
zero_sum_alternating = _game("zero_sum", "alternating")
general_sum_simultaneous = _game("general_sum", "simultaneous")
general_sum_alternating = _game("general_sum", "alternating")

RULES: dict[str, Rule] = {
    r.name: r
    for r in (
        gd,
        sgd(),
        simultaneous,
        alternating,
        zero_sum_simultaneous,
        zero_sum_alternating,
        general_sum_simultaneous,
        general_sum_alternating,
        extragradient,
        sam,
        euler,
        midpoint,
        heun,
        rk4,
        heavy_ball,
        nesterov,
        nesterov_optax,
        ema_momentum,
        optimistic,
        weight_average,
        heavy_ball_game,
        lookahead,
    )
}
"""The built-in rules by name, with default parameters."""


def get_rule(name: str) -> Rule:
    """The built-in rule called `name` (the coordinate-wise ones too); raises
    `BeaValueError` listing the valid names."""
    from ._coordinate import COORDINATE_RULES

    if isinstance(name, str) and name in RULES:
        return RULES[name]
    if isinstance(name, str) and name in COORDINATE_RULES:
        return COORDINATE_RULES[name]
    raise BeaValueError(
        f"unknown rule {name!r}; the built-in rules are {', '.join(RULES)}, and per "
        f"coordinate {', '.join(COORDINATE_RULES)}"
    )
