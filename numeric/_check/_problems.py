"""Built-in test problems for `bea verify`: small, smooth, unit-scale, float64.

Constants are NumPy float64 arrays, so the problems are float64 inside a check even
when JAX's float64 mode is switched on only there.

Single-player problems (one block `theta`) give a loss `E`, mini-batch losses
`E1..En` whose mean is `E` (for `sgd(n)`), and the field `f = -grad E` (for the
Runge-Kutta rules). Games (blocks `phi`, `theta`) give two losses L1 (phi's) and L2
(theta's), each a function of the whole state, and everything the game rules ask
for: the fields `f = -grad_phi L1`, `g = -grad_theta L2` (rules written with
`field`), the losses `L1`, `L2` (general-sum gradient rules) and, for a zero-sum game
with value L = L1 = -L2 (phi minimising, theta maximising), `E = -L`, which phi
ascends and theta descends (the zero-sum gradient rules).

Synthetic data come from explicit seeds (`numpy.random.default_rng(seed)` inside
the function that draws them); nothing depends on a global random state.

* `quadratic`: E = 1/2 theta^T A theta + b^T theta in 3-D.
* `nonconvex`: a 2-D double well coupled to a valley, with a sine ripple.
* `mlp`: a 2-5-1 tanh network (a dict of weights, 21 parameters) on 12 synthetic points.
* `least_squares`: linear regression on 12 points in 3-D, split into mini-batches.
* `bilinear`: L = phi^T A theta in 2+2 dimensions.
* `zero_sum`: L = tanh(phi)^T A theta + |phi|^2/4 - |theta|^2/4, a non-linear game.
* `zero_sum_quadratic`: the quadratic-bilinear zero-sum game
  E(phi, theta) = -phi^T P phi/2 + phi^T A theta + theta^T Q theta/2 (phi ascends E).
* `general_sum`: L1 = |phi|^2/2 + phi^T A theta + cos terms, L2 = |theta|^2/2 +
  tanh(phi)^T B theta + sin terms: a smooth game that is not zero-sum.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import jax
import jax.numpy as jnp
import numpy as np

from bea import BeaValueError

__all__ = ["PROBLEMS", "Problem", "default_problem", "get_problem"]


@dataclass(frozen=True)
class Problem:
    """A built-in problem.

    Arguments:
        name: the name used on the command line.
        description: one line.
        blocks: 1 (a loss) or 2 (a game).
        state0: the starting state.
        loss: for one block, `loss(theta, batch, n)`: batch k of n (batch 0: all).
        game: for a zero-sum game, the value L(phi, theta) (phi minimises it).
        pair: for a general-sum game, the losses `(L1, L2)` of phi and theta, each a
            function `(phi, theta) -> scalar`.
        h_scale: multiplies the default learning rates.
    """

    name: str
    description: str
    blocks: int
    state0: object
    loss: Callable | None = None
    game: Callable | None = None
    pair: tuple[Callable, Callable] | None = None
    h_scale: float = 1.0

    @property
    def gives(self) -> str:
        """What the problem offers, in words."""
        if self.blocks == 1:
            return "a loss E, mini-batch losses E1..En and the field f = -grad E"
        if self.game is not None:
            return "a zero-sum game: E, L1, L2 and the fields f, g"
        return "a general-sum game: L1, L2 and the fields f, g"

    @cached_property
    def game_losses(self) -> dict[str, Callable]:
        """For a game: loss name -> function of the state tuple (phi, theta)."""
        if self.blocks != 2:
            return {}
        if self.game is not None:
            L = self.game
            return {
                "E": lambda s: -L(*s),
                "L1": lambda s: L(*s),
                "L2": lambda s: -L(*s),
            }
        L1, L2 = self.pair
        return {"L1": lambda s: L1(*s), "L2": lambda s: L2(*s)}

    def oracles_for(self, meq) -> tuple[dict, dict]:
        """`(losses, fields)` for the oracles of a modified equation (or rule)."""
        if len(meq.blocks) != self.blocks:
            kind = "a single-player" if self.blocks == 1 else "a two-player"
            fits = ", ".join(p.name for p in PROBLEMS.values() if p.blocks == len(meq.blocks))
            raise BeaValueError(
                f"problem {self.name!r} is {kind} problem but rule {meq.rule!r} has "
                f"{len(meq.blocks)} block(s); use one of {fits or 'none'}"
            )
        losses, fields = {}, {}
        grads = sorted({o.name for o in meq.oracles if o.kind == "grad"})
        if self.blocks == 2:
            for name in grads:
                if name not in self.game_losses:
                    fits = ", ".join(p.name for p in PROBLEMS.values() if name in p.game_losses)
                    raise BeaValueError(
                        f"problem {self.name!r} is {self.gives.split(':')[0]} without a loss "
                        f"{name!r}, which rule {meq.rule!r} uses; use --problem "
                        + (fits or "with that loss")
                    )
                losses[name] = self.game_losses[name]
        batched = [n for n in grads if n != "E"]
        for name in grads if self.blocks == 1 else ():
            if name == "E":
                losses[name] = lambda th: self.loss(th, 0, 1)
            elif name[1:].isdigit() and name[0] == "E":
                k, n = int(name[1:]), len(batched)
                if not 1 <= k <= n:
                    raise BeaValueError(f"loss {name!r} is outside E1..E{n}")
                losses[name] = lambda th, k=k, n=n: self.loss(th, k, n)
            else:
                raise BeaValueError(
                    f"problem {self.name!r} has no loss {name!r}; it gives E and E1..En"
                )
        for o in meq.oracles:
            if o.kind != "field":
                continue
            if self.blocks == 1 and o.name == "f":
                fields["f"] = lambda th: -jax.grad(lambda t: self.loss(t, 0, 1))(th)
            elif self.blocks == 2 and o.name == "f":
                L1 = self.game_losses["L1"]
                fields["f"] = lambda s, L1=L1: -jax.grad(lambda p: L1((p, s[1])))(s[0])
            elif self.blocks == 2 and o.name == "g":
                L2 = self.game_losses["L2"]
                fields["g"] = lambda s, L2=L2: -jax.grad(lambda t: L2((s[0], t)))(s[1])
            else:
                raise BeaValueError(
                    f"problem {self.name!r} has no field {o.name!r}; it gives "
                    + ("f = -grad E" if self.blocks == 1 else "f and g of a game")
                )
        return losses, fields


def _shift(k: int, n: int, dim: int):
    """Batch k's perturbation (u_k, v_k) with sum over k of each equal to zero."""
    if k == 0 or n == 1:
        return np.zeros(dim), 0.0
    rng = np.random.default_rng(7)
    u = rng.normal(size=(n, dim)) * 0.3
    v = rng.normal(size=n) * 0.2
    return u[k - 1] - u.mean(0), float(v[k - 1] - v.mean())


def _perturbed(base: Callable, dim: int) -> Callable:
    def loss(theta, k, n):
        u, v = _shift(k, n, dim)
        return base(theta) + jnp.dot(jnp.asarray(u), theta) + 0.5 * v * jnp.sum(theta**2)

    return loss


_A = np.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.3], [0.0, 0.3, 0.5]])
_B = np.array([0.2, -0.1, 0.3])


def _quadratic(theta):
    return 0.5 * theta @ _A @ theta + _B @ theta


def _nonconvex(theta):
    x, y = theta[0], theta[1]
    return (x**2 - 1) ** 2 / 4 + 0.5 * (y - 0.5 * x) ** 2 + 0.2 * jnp.sin(x + 2 * y)


def synthetic_data(seed: int = 0) -> dict[str, object]:
    """The synthetic data of the `mlp` and `least_squares` problems, drawn from `seed`.

    Returns:
        `X`, `Y` (12 points of a 2-D regression for the MLP), `LX`, `LY` (12 noisy
        points of a linear model in 3-D) and `MLP0` (the MLP's starting weights).
    """
    rng = np.random.default_rng(seed)
    x = np.asarray(rng.normal(size=(12, 2)))
    lx = np.asarray(rng.normal(size=(12, 3)))
    ly = lx @ np.array([0.5, -1.0, 0.25]) + 0.1 * rng.normal(size=12)
    mlp0 = {
        "W1": np.asarray(rng.normal(size=(2, 5)) * 0.5),
        "b1": np.zeros(5),
        "W2": np.asarray(rng.normal(size=(5, 1)) * 0.5),
        "b2": np.zeros(1),
    }
    return {"X": x, "Y": np.sin(x[:, :1] - 0.5 * x[:, 1:]), "LX": lx, "LY": ly, "MLP0": mlp0}


_DATA = synthetic_data(0)
_X, _Y, _LX, _LY, _MLP0 = (_DATA[k] for k in ("X", "Y", "LX", "LY", "MLP0"))


def _rows(k: int, n: int, total: int) -> np.ndarray:
    if k == 0:
        return np.arange(total)
    return np.array_split(np.arange(total), n)[k - 1]


def _mlp(params, k, n):
    rows = _rows(k, n, _X.shape[0])
    x, y = _X[rows], _Y[rows]
    hidden = jnp.tanh(x @ params["W1"] + params["b1"])
    out = hidden @ params["W2"] + params["b2"]
    return 0.5 * jnp.mean(jnp.sum((out - y) ** 2, axis=1))


def _least_squares(theta, k, n):
    rows = _rows(k, n, _LX.shape[0])
    r = _LX[rows] @ theta - _LY[rows]
    return 0.5 * jnp.mean(r**2)


_G = np.array([[1.0, 0.5], [-0.3, 0.8]])


def _bilinear(phi, theta):
    return phi @ _G @ theta


def _zero_sum(phi, theta):
    return jnp.tanh(phi) @ _G @ theta + 0.25 * jnp.sum(phi**2) - 0.25 * jnp.sum(theta**2)


_P = np.array([[0.6, 0.1], [0.1, 0.4]])
_Q = np.array([[0.5, -0.1], [-0.1, 0.3]])
_G2 = np.array([[0.7, -0.4], [0.2, 0.9]])


def _zero_sum_quadratic(phi, theta):
    # the value L = -E, with E = -phi^T P phi/2 + phi^T A theta + theta^T Q theta/2
    return 0.5 * phi @ _P @ phi - phi @ _G @ theta - 0.5 * theta @ _Q @ theta


def _general_sum_1(phi, theta):
    return 0.5 * jnp.sum(phi**2) + phi @ _G @ theta + 0.1 * jnp.sum(jnp.cos(phi))


def _general_sum_2(phi, theta):
    return 0.5 * jnp.sum(theta**2) + jnp.tanh(phi) @ _G2 @ theta + 0.1 * jnp.sum(jnp.sin(theta))


PROBLEMS: dict[str, Problem] = {
    p.name: p
    for p in (
        Problem(
            "quadratic",
            "E = 1/2 theta^T A theta + b^T theta in 3-D",
            1,
            np.array([1.0, -0.5, 0.8]),
            loss=_perturbed(_quadratic, 3),
        ),
        Problem(
            "nonconvex",
            "2-D double well in a tilted valley with a sine ripple",
            1,
            np.array([0.6, -0.4]),
            loss=_perturbed(_nonconvex, 2),
        ),
        Problem(
            "mlp",
            "2-5-1 tanh MLP (dict of weights) on 12 synthetic points",
            1,
            _MLP0,
            loss=_mlp,
            h_scale=2.0,
        ),
        Problem(
            "least_squares",
            "linear least squares on 12 points in 3-D, n mini-batches",
            1,
            np.array([0.3, 0.2, -0.4]),
            loss=_least_squares,
            h_scale=2.0,
        ),
        Problem(
            "bilinear",
            "zero-sum bilinear game L = phi^T A theta",
            2,
            (np.array([0.5, -0.3]), np.array([0.2, 0.4])),
            game=_bilinear,
        ),
        Problem(
            "zero_sum",
            "non-linear zero-sum game L = tanh(phi)^T A theta + |phi|^2/4 - |theta|^2/4",
            2,
            (np.array([0.5, -0.3]), np.array([0.2, 0.4])),
            game=_zero_sum,
        ),
        Problem(
            "zero_sum_quadratic",
            "quadratic-bilinear zero-sum game E = -phi^T P phi/2 + phi^T A theta + "
            "theta^T Q theta/2 (phi ascends E)",
            2,
            (np.array([0.5, -0.3]), np.array([0.2, 0.4])),
            game=_zero_sum_quadratic,
        ),
        Problem(
            "general_sum",
            "general-sum game L1 = |phi|^2/2 + phi^T A theta + cos terms, "
            "L2 = |theta|^2/2 + tanh(phi)^T B theta + sin terms",
            2,
            (np.array([0.5, -0.3]), np.array([0.2, 0.4])),
            pair=(_general_sum_1, _general_sum_2),
        ),
    )
}
"""The built-in problems by name."""


def get_problem(name: str) -> Problem:
    """The built-in problem called `name`; raises `BeaValueError` listing the names."""
    try:
        return PROBLEMS[name]
    except (KeyError, TypeError):
        raise BeaValueError(
            f"unknown problem {name!r}; the built-in problems are {', '.join(PROBLEMS)}"
        ) from None


def default_problem(meq) -> str:
    """The problem `bea verify` uses for a rule when none is named."""
    if len(meq.blocks) == 2:
        grads = {o.name for o in meq.oracles if o.kind == "grad"}
        if "E" in grads:
            return "zero_sum_quadratic"
        if grads:
            return "general_sum"
        return "zero_sum"
    names = {o.name for o in meq.oracles}
    if any(n != "E" and n.startswith("E") for n in names):
        return "least_squares"
    return "nonconvex"
