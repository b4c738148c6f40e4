"""Shuffled SGD run numerically: the mean epoch map against `bea.sgd_expected`."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bea
import numeric
from numeric._lower._flow import fit_slope, integrate
from numeric._run._shuffled import shuffled_sgd

# three generic (non-quadratic, non-commuting) mini-batch losses on R^2
LOSSES = {
    "E1": lambda x: 0.5 * (x[0] - 1.0) ** 2 + 0.25 * x[1] ** 4 + 0.3 * x[0] * x[1],
    "E2": lambda x: jnp.cos(x[0]) + 0.5 * (x[1] + 0.5) ** 2,
    "E3": lambda x: 0.5 * (x[0] + x[1]) ** 2 + 0.1 * x[0] ** 3,
}
X0 = jnp.array([0.4, -0.3])
HS = (0.02, 0.01, 0.005)


@pytest.fixture(scope="module")
def epoch():
    return shuffled_sgd(LOSSES)


@pytest.fixture(scope="module", params=[1, 2], ids=["order1", "order2"])
def errors(request, epoch):
    """`(N, mean, first)`: |map - flow over 3h of sgd_expected(3, N)| at each h, for the
    mean map and for the first ordering alone."""
    order = request.param
    field = numeric.vector_field(bea.sgd_expected(3, order), losses=LOSSES)
    flow = jax.jit(lambda y, h: integrate(lambda z, a: field(z, a), y, 3 * h, h))
    mean, first = [], []
    for h in HS:
        y, ok = flow(X0, h)
        assert bool(ok)
        mean.append(float(jnp.linalg.norm(epoch(X0, h) - y)))
        first.append(float(jnp.linalg.norm(epoch.ordered(X0, h)[0] - y)))
    return order, mean, first


def test_mean_map_follows_the_averaged_flow_to_slope_order_plus_2(epoch, errors):
    # local error of the exact mean over the 3! orderings against the flow over 3h of
    # sgd_expected(3, N): O(h^(N+2)) (Hairer, Lubich and Wanner, ch. IX.1); N = 1 is
    # Smith, Dherin, Barrett and De (ICLR 2021)
    order, mean, _ = errors
    assert epoch.exact and epoch.orderings.shape == (6, 3)
    slope, _ = fit_slope(HS, mean)
    assert abs(slope - (order + 2)) < 0.2, (slope, mean)


def test_one_ordering_does_not_follow_the_averaged_flow(errors):
    # the averaged field misses the ordering-dependent h-term of a single epoch
    # (Smith et al., ICLR 2021: it is not a gradient), so the error is only O(h^2)
    _, _, first = errors
    slope, _ = fit_slope(HS, first)
    assert abs(slope - 2) < 0.2, (slope, first)


def test_exact_mean_is_the_mean_of_the_orderings(epoch):
    h = 0.1
    each = epoch.ordered(X0, h)
    assert each.shape == (6, 2)
    assert np.allclose(epoch(X0, h), each.mean(axis=0), rtol=0, atol=1e-15)
    # rows really differ: the orderings give different iterates
    assert float(jnp.ptp(each[:, 0])) > 1e-4


def test_sampled_mean_approaches_the_exact_mean(epoch):
    # Monte Carlo over 4000 uniformly drawn orderings: within 5 standard errors
    h = 0.1
    sampled = shuffled_sgd(LOSSES, key=jax.random.key(0), samples=4000)
    assert not sampled.exact
    each = np.asarray(sampled.ordered(X0, h))
    stderr = each.std(axis=0) / np.sqrt(len(each))
    assert np.all(np.abs(np.asarray(sampled(X0, h)) - np.asarray(epoch(X0, h))) < 5 * stderr)
    # every row is a permutation of the batches, and the key fixes the draw
    assert np.all(np.sort(np.asarray(sampled.orderings), axis=1) == np.arange(3))
    again = shuffled_sgd(LOSSES, key=jax.random.key(0), samples=4000)
    assert np.array_equal(np.asarray(again.orderings), np.asarray(sampled.orderings))


def test_pytree_state_and_sequence_of_losses():
    fns = [lambda p: jnp.sum(p["w"] ** 2) + p["b"] ** 2, lambda p: jnp.sum(p["w"]) * p["b"]]
    epoch = shuffled_sgd(fns)
    out = epoch({"w": jnp.array([1.0, 2.0]), "b": jnp.array(0.5)}, 0.1)
    assert set(out) == {"w", "b"} and out["w"].shape == (2,)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"losses": [lambda x: x] * 9}, bea.BeaValueError, "key="),
        ({"losses": LOSSES, "n": 2}, bea.BeaValueError, "E1, E2"),
        ({"losses": [lambda x: x] * 2, "n": 3}, bea.BeaValueError, "n=3"),
        ({"losses": LOSSES, "n": 0}, bea.BeaValueError, "n=0"),
        ({"losses": 3}, bea.BeaTypeError, "losses="),
        ({"losses": [1, 2]}, bea.BeaTypeError, "E1"),
        ({"losses": LOSSES, "key": "seed"}, bea.BeaTypeError, "key="),
        ({"losses": LOSSES, "key": jax.random.key(0), "samples": 0}, bea.BeaValueError, "samples"),
    ],
)
def test_bad_arguments_raise_the_package_errors(kwargs, error, match):
    with pytest.raises(error, match=match) as info:
        shuffled_sgd(**kwargs)
    assert "\n" not in str(info.value)
