"""Built-in rules with memory: momentum, Nesterov, optimistic gradient, averages.

Each is the update as a training library runs it, with the memory as an explicit
argument (see `bea.rule(memory=...)`); `beta` is symbolic by default. On the slow
manifold (`bea._families._memory`) each becomes a one-step map of theta, so its modified
equation is a series in h with coefficients rational in beta.

* `heavy_ball`: v' = beta v - h grad E(theta), theta' = theta + v' (Polyak 1964).
  `optax.sgd(h, momentum=beta)` is the same map with v = -h m.
* `nesterov`: v' = beta v - h grad E(theta + beta v), theta' = theta + v'
  (Sutskever et al., ICML 2013: the gradient at the look-ahead point).
* `nesterov_optax`: m' = g + beta m, theta' = theta - h (g + beta m'), g = grad E(theta):
  the form `optax.sgd(h, momentum=beta, nesterov=True)` and PyTorch implement.
* `ema_momentum`: m' = beta m + (1 - beta) g, theta' = theta - h m' (an exponential
  moving average of gradients, Adam's first moment without the second).
* `optimistic`: theta' = theta - h (2 g - g_prev), g_prev' = g, with g = grad E(theta)
  (optimistic gradient descent, Popov 1980; Daskalakis et al., ICLR 2018).
* `weight_average`: gradient descent with an exponential moving average of the
  weights as a read-out, a' = beta a + (1 - beta) theta'.
* `heavy_ball_game`: two players on fields f, g, each with its own velocity.
* `lookahead`: k gradient steps of the fast weights, then theta' = theta +
  alpha (fast - theta) (Zhang et al., NeurIPS 2019); memoryless, since the fast
  weights restart from theta; the flow covers k h.
"""

from __future__ import annotations

import sympy as sp

from .._core._scalars import H, exact_value
from ._rule import Rule, as_rule, step_count

__all__ = [
    "ema_momentum",
    "heavy_ball",
    "heavy_ball_game",
    "lookahead",
    "nesterov",
    "nesterov_optax",
    "optimistic",
    "weight_average",
]

BETA, ALPHA = sp.symbols("beta alpha")


def _with_beta(update, name: str, factory, beta, memory, description: str, **kw) -> Rule:
    rule = Rule(
        update,
        name=name,
        params=(("beta", beta),),
        factory=lambda **p: factory(p.get("beta", beta)),
        description=description,
        **kw,
    )
    return as_rule(rule, memory=memory)


def _heavy_ball(beta=BETA) -> Rule:
    beta = exact_value(beta, "beta")

    def heavy_ball(theta, v, h, grad):
        v = beta * v - h * grad("E", theta)
        return theta + v, v

    return _with_beta(
        heavy_ball, "heavy_ball", _heavy_ball, beta, ("v",), "Polyak momentum, velocity v"
    )


def _nesterov(beta=BETA) -> Rule:
    beta = exact_value(beta, "beta")

    def nesterov(theta, v, h, grad):
        v = beta * v - h * grad("E", theta + beta * v)
        return theta + v, v

    return _with_beta(
        nesterov, "nesterov", _nesterov, beta, ("v",), "Nesterov momentum, look-ahead gradient"
    )


def _nesterov_optax(beta=BETA) -> Rule:
    beta = exact_value(beta, "beta")

    def nesterov_optax(theta, m, h, grad):
        g = grad("E", theta)
        m = g + beta * m
        return theta - h * (g + beta * m), m

    return _with_beta(
        nesterov_optax,
        "nesterov_optax",
        _nesterov_optax,
        beta,
        ("m",),
        "Nesterov momentum as optax.sgd(nesterov=True) and PyTorch run it",
    )


def _ema_momentum(beta=BETA) -> Rule:
    beta = exact_value(beta, "beta")

    def ema_momentum(theta, m, h, grad):
        m = beta * m + (1 - beta) * grad("E", theta)
        return theta - h * m, m

    return _with_beta(
        ema_momentum,
        "ema_momentum",
        _ema_momentum,
        beta,
        ("m",),
        "momentum as an exponential moving average of gradients",
    )


def _optimistic() -> Rule:
    def optimistic(theta, g_prev, h, grad):
        g = grad("E", theta)
        return theta - h * (2 * g - g_prev), g

    rule = Rule(
        optimistic,
        name="optimistic",
        factory=lambda **p: _optimistic(),
        description="optimistic gradient descent, memory of the previous gradient",
    )
    return as_rule(rule, memory=("g_prev",))


def _weight_average(beta=BETA) -> Rule:
    beta = exact_value(beta, "beta")

    def weight_average(theta, avg, h, grad):
        theta = theta - h * grad("E", theta)
        return theta, beta * avg + (1 - beta) * theta

    return _with_beta(
        weight_average,
        "weight_average",
        _weight_average,
        beta,
        ("avg",),
        "gradient descent with an exponential moving average of the weights",
    )


def _heavy_ball_game(beta=BETA) -> Rule:
    beta = exact_value(beta, "beta")

    def heavy_ball_game(state, v, h, field):
        phi, theta = state
        v_phi, v_theta = v
        v_phi = beta * v_phi + h * field("f", state)
        v_theta = beta * v_theta + h * field("g", state)
        return (phi + v_phi, theta + v_theta), (v_phi, v_theta)

    return _with_beta(
        heavy_ball_game,
        "heavy_ball_game",
        _heavy_ball_game,
        beta,
        ("v",),
        "simultaneous two-player heavy ball on fields f, g",
        blocks=("phi", "theta"),
    )


def _lookahead(alpha=ALPHA, k=2) -> Rule:
    alpha = exact_value(alpha, "alpha")
    k = step_count("k", k)

    def lookahead(theta, h, grad):
        fast = theta
        for _ in range(k):
            fast = fast - h * grad("E", fast)
        return theta + alpha * (fast - theta)

    return Rule(
        lookahead,
        name="lookahead",
        time=k * H,
        params=(("alpha", alpha), ("k", k)),
        factory=lambda **p: _lookahead(p.get("alpha", alpha), p.get("k", k)),
        description="Lookahead: k fast gradient steps, then move alpha of the way",
    )


heavy_ball = _heavy_ball()
nesterov = _nesterov()
nesterov_optax = _nesterov_optax()
ema_momentum = _ema_momentum()
optimistic = _optimistic()
weight_average = _weight_average()
heavy_ball_game = _heavy_ball_game()
lookahead = _lookahead()
