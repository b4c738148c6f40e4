"""`shuffled_sgd`: one epoch of SGD averaged over orderings of the mini-batches.

One epoch with the ordering sigma takes the n steps

    theta_i = theta_(i-1) - h grad E_sigma(i)(theta_(i-1)),   i = 1..n,

and covers time n h. Random reshuffling draws sigma uniformly from the n! orderings;
the *mean* epoch map theta -> E_sigma[theta_n] is what `bea.sgd_expected(n, N)`
describes: the flow of its field over n h matches the mean map up to O(h^(N+2))
(Smith, Dherin, Barrett and De, ICLR 2021, at N = 1). This module runs that mean map
numerically, exactly (all n! orderings, small n) or by Monte Carlo over orderings
drawn with an explicit `jax.random` key, so the averaged formula can be checked
against it (local error against h, fitted log-log slope N + 2).

Each ordering is a `lax.scan` over its n steps with a `lax.switch` between the
batches' gradients, and the orderings run as one `jax.vmap` batch; the state may be
any pytree of floating arrays (it is raveled once per call).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from bea import BeaTypeError, BeaValueError

from .._lower._params import step_size

__all__ = ["MAX_EXACT_ORDERINGS", "ShuffledSGD", "shuffled_sgd"]

MAX_EXACT_ORDERINGS = 40_320
"""Exact averaging runs all n! orderings; refused above 8! (pass a key to sample)."""

MAX_SAMPLES = 1_000_000
"""The most orderings one sampled average draws."""


def _losses_in_order(losses, n: int) -> list[Callable]:
    """The batch losses as a list E1..En from a mapping or a sequence."""
    if isinstance(losses, Mapping):
        names = [f"E{i}" for i in range(1, n + 1)]
        if set(losses) != set(names):
            raise BeaValueError(
                f"losses has keys {sorted(losses)}; for n={n} pass exactly "
                f"{', '.join(names)} (the mini-batch losses of bea.sgd_expected)"
            )
        fns = [losses[k] for k in names]
    elif isinstance(losses, Sequence) and not isinstance(losses, str):
        fns = list(losses)
        if len(fns) != n:
            raise BeaValueError(f"losses holds {len(fns)} functions; pass n={n} of them")
    else:
        raise BeaTypeError(
            f"losses={losses!r} must be a mapping E1..En -> function or a sequence of n functions"
        )
    for i, f in enumerate(fns, start=1):
        if not callable(f):
            raise BeaTypeError(f"loss E{i} is {f!r}; pass a scalar JAX function of the state")
    return fns


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise BeaValueError(f"{name}={value!r} must be a positive integer")
    return int(value)


class ShuffledSGD:
    """The epoch map of SGD averaged over orderings: `epoch(theta, h)`.

    `epoch(theta, h)` returns the mean over `orderings` of the state after one epoch
    (n steps of size h), structured like `theta`; `epoch.ordered(theta, h)` returns
    the state after each ordering (leading axis: the orderings). `h` is traced: new
    values reuse the compiled code.

    Attributes:
        n: the number of mini-batches.
        orderings: `(P, n)` integer array; row p lists the batch indices (0-based)
            in the order they are visited.
        exact: True when the rows are all n! orderings (the mean is exact).
    """

    def __init__(self, fns: list[Callable], orderings, exact: bool):
        self.n = len(fns)
        self.orderings = jnp.asarray(orderings, dtype=jnp.int32)
        self.exact = exact
        self._grads = [jax.grad(f) for f in fns]
        self._ordered = jax.jit(self._ordered_impl)
        self._mean = jax.jit(self._mean_impl)

    def _ordered_flat(self, z, unravel, h):
        def branch(i):
            return lambda y: ravel_pytree(self._grads[i](unravel(y)))[0]

        branches = [branch(i) for i in range(self.n)]

        def one(order):
            def body(y, k):
                return y - h * jax.lax.switch(k, branches, y), None

            y, _ = jax.lax.scan(body, z, order)
            return y

        return jax.vmap(one)(self.orderings)

    def _ordered_impl(self, theta, h):
        z, unravel = ravel_pytree(theta)
        return jax.vmap(unravel)(self._ordered_flat(z, unravel, h))

    def _mean_impl(self, theta, h):
        z, unravel = ravel_pytree(theta)
        return unravel(jnp.mean(self._ordered_flat(z, unravel, h), axis=0))

    def ordered(self, theta, h):
        """The state after one epoch for each ordering (leading axis: orderings)."""
        return self._ordered(theta, step_size(h))

    def __call__(self, theta, h):
        return self._mean(theta, step_size(h))

    def __repr__(self) -> str:
        kind = "all" if self.exact else "sampled"
        return f"ShuffledSGD(n={self.n}, {kind} {self.orderings.shape[0]} orderings)"


def shuffled_sgd(
    losses: Mapping[str, Callable] | Sequence[Callable],
    n: int | None = None,
    *,
    key=None,
    samples: int = 1024,
) -> ShuffledSGD:
    """One epoch of SGD over n mini-batch losses, averaged over their orderings.

    Without `key` the mean is exact: all n! orderings are run (n <= 8). With a
    `jax.random` key, `samples` orderings are drawn uniformly (with replacement) and
    averaged; the same key gives the same orderings.

    Arguments:
        losses: the mini-batch losses, a mapping `{"E1": f1, ..., "En": fn}` (the
            colours of `bea.sgd_expected(n, N)`) or a sequence of n functions; each a
            scalar JAX function of the state.
        n: the number of batches (default: `len(losses)`); checked against `losses`.
        key: a `jax.random` key for sampled orderings; None for the exact mean.
        samples: how many orderings to draw when `key` is given.

    Returns:
        A `ShuffledSGD`; `epoch(theta, h)` is the mean state after one epoch.

    Example:
        >>> import jax.numpy as jnp
        >>> epoch = shuffled_sgd([lambda x: x[0] ** 2 / 2, lambda x: jnp.sum(x) ** 2 / 2])
        >>> epoch.ordered(jnp.array([1.0, 0.0]), 0.1)   # E1 then E2; E2 then E1
        Array([[ 0.81, -0.09],
               [ 0.81, -0.1 ]], dtype=float64)
        >>> epoch(jnp.array([1.0, 0.0]), 0.1)   # their mean
        Array([ 0.81 , -0.095], dtype=float64)
    """
    if n is None:
        if not isinstance(losses, Mapping | Sequence) or isinstance(losses, str):
            raise BeaTypeError(
                f"losses={losses!r} must be a mapping E1..En -> function or a sequence of functions"
            )
        n = len(losses)
    n = _positive_int("n", n)
    fns = _losses_in_order(losses, n)
    if key is None:
        if math.factorial(n) > MAX_EXACT_ORDERINGS:
            raise BeaValueError(
                f"n={n} has {math.factorial(n)} orderings, over the limit of "
                f"{MAX_EXACT_ORDERINGS} for the exact mean; pass key=jax.random.key(0) to "
                "sample orderings instead"
            )
        orderings = np.array(list(itertools.permutations(range(n))), dtype=np.int32)
        return ShuffledSGD(fns, orderings, exact=True)
    samples = _positive_int("samples", samples)
    if samples > MAX_SAMPLES:
        raise BeaValueError(
            f"samples={samples} is over the limit of {MAX_SAMPLES} orderings; draw fewer"
        )
    try:
        keys = jax.random.split(key, samples)
    except (TypeError, ValueError) as err:
        raise BeaTypeError(
            f"key={key!r} is not a jax.random key; pass jax.random.key(seed)"
        ) from err
    orderings = jax.vmap(lambda k: jax.random.permutation(k, n))(keys)
    return ShuffledSGD(fns, orderings, exact=False)
