"""Kernels and optax transforms under `jax.sharding`: the same numbers on 8 devices.

A separate Python process gets 8 host (CPU) devices from
`XLA_FLAGS=--xla_force_host_platform_device_count=8`, shards an MLP's parameters
(first layer's rows) and the mini-batch (examples) over them, and evaluates the
order-2 gd field, the modified loss with held-fixed terms, and three optax training
steps (explicit regulariser, modified update, chained with clipping) with both the
sharded and the single-device inputs. The two must agree to 1e-12 in float64 (only
the order of floating-point reductions may differ).
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

# one worker runs the whole module, so its module-scoped fixtures are built once
pytestmark = pytest.mark.xdist_group("sharding")

SCRIPT = textwrap.dedent(
    """
    import json
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import numpy as np
    import optax
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

    import bea
    from bea._results._drift import drift
    from numeric._lower._kernels import field_function
    from numeric._lower._loss_fn import loss_function
    from numeric._train._transforms import modified_update, regularised

    devices = jax.devices()
    assert len(devices) == 8, devices
    mesh = Mesh(np.array(devices), ("d",))

    key = jax.random.PRNGKey(0)
    k1, k2, k3, k4 = jax.random.split(key, 4)
    params = {
        "w1": jax.random.normal(k1, (16, 8)) / 4,
        "w2": jax.random.normal(k2, (8,)) / 3,
    }
    x = jax.random.normal(k3, (32, 16))
    y = jax.random.normal(k4, (32,))

    def loss(p, batch):
        xb, yb = batch
        return jnp.mean((jnp.tanh(xb @ p["w1"]) @ p["w2"] - yb) ** 2)

    gd1 = bea.modified_equation(bea.rules.gd, 1)
    gd2 = bea.modified_equation(bea.rules.gd, 2)
    field = field_function(gd2)
    mloss = loss_function(bea.modified_loss(gd2, held_fixed=True))
    h = 0.05
    opt = optax.chain(
        regularised(drift(gd1, scale=-1), h=h), optax.clip_by_global_norm(10.0), optax.sgd(h)
    )
    euler = modified_update(gd2, h=h)

    @jax.jit
    def evaluate(p, batch):
        fns = {"E": lambda q: loss(q, batch)}
        return field(p, h, fns), mloss(p, h, fns)

    @jax.jit
    def train(p, batch):
        state = opt.init(p)
        for _ in range(3):
            g = jax.grad(loss)(p, batch)
            updates, state = opt.update(g, state, p, loss=loss, batch=batch)
            p = optax.apply_updates(p, updates)
        step, _ = euler.update(None, euler.init(p), p, loss=loss, batch=batch)
        return optax.apply_updates(p, step)

    one = jax.devices()[0]
    single = jax.device_put((params, (x, y)), one)
    shard_p = {
        "w1": jax.device_put(params["w1"], NamedSharding(mesh, P("d", None))),
        "w2": jax.device_put(params["w2"], NamedSharding(mesh, P("d"))),
    }
    shard_b = (
        jax.device_put(x, NamedSharding(mesh, P("d", None))),
        jax.device_put(y, NamedSharding(mesh, P("d"))),
    )
    results = {}
    for name, fn in (("evaluate", evaluate), ("train", train)):
        a = jax.tree_util.tree_map(np.asarray, fn(*single))
        b = jax.tree_util.tree_map(np.asarray, fn(shard_p, shard_b))
        diffs = jax.tree_util.tree_map(
            lambda u, v: float(np.max(np.abs(u - v)) / (1e-300 + np.max(np.abs(u)))), a, b
        )
        results[name] = max(jax.tree_util.tree_leaves(diffs))
        results[name + "_size"] = float(
            sum(np.sum(np.abs(u)) for u in jax.tree_util.tree_leaves(a))
        )
    results["devices_w1"] = len(shard_p["w1"].sharding.device_set)
    results["devices_x"] = len(shard_b[0].sharding.device_set)
    print(json.dumps(results))
    """
)


@pytest.fixture(scope="module")
def sharded():
    env = dict(os.environ)
    env["XLA_FLAGS"] = (
        env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
    ).strip()
    env["JAX_PLATFORMS"] = "cpu"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_inputs_are_sharded_over_eight_devices(sharded):
    assert sharded["devices_w1"] == 8
    assert sharded["devices_x"] == 8


def test_kernels_agree_with_one_device(sharded):
    assert sharded["evaluate_size"] > 1e-3  # a nonzero field and loss
    assert sharded["evaluate"] < 1e-12


def test_training_steps_agree_with_one_device(sharded):
    assert sharded["train_size"] > 1e-3
    assert sharded["train"] < 1e-12
