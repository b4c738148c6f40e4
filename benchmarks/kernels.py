"""Cost of the modified-field kernels on an MLP with > 1e5 parameters.

Prints, relative to one `jax.grad` call of the loss (all jit-compiled, float32,
fastest of 15 runs):

* the order-1 gd field (`numeric.vector_field`) against a hand-written implicit
  gradient regularisation gradient, grad(E + h/4 |grad E|^2) by double backprop
  (goal: ratio <= 1.2);
* the gd fields of orders 1-4, against the goal of at most
  3 x (distinct non-leaf subtrees + 1) gradient evaluations, "before" (every subtree
  by its own nested jvp, `numeric._lower._kernels.PROBES = False`) and "after" (several
  trees from the subsets of one nested jvp), in wall-clock and CPU time;
* compile times, wall-clock and CPU (process) seconds;
* the Adam fields of orders 1 and 2 (beta1, beta2, eps = 0.9, 0.999, 1e-8; derived once
  over weighted trees, for every dimension, and lowered on the whole MLP by
  `numeric.vector_field`, elementwise on the pytree: functions of the gradient and
  Hessian-vector products) against one `optax.adam` update (gradient and update,
  jit-compiled), run in turns (one call of each per round, 41 rounds), fastest and
  median run (goals: order 1 <= 2x, order 2 <= 10x).

    .venv/bin/python benchmarks/kernels.py
"""

from __future__ import annotations

import itertools
import statistics
import time

import jax
import jax.numpy as jnp
import optax

import bea
import numeric
from numeric._lower import _kernels as kernels

WIDTHS = (64, 320, 320, 10)
BATCH = 128
H = 0.01


def make_problem(seed: int = 0):
    key = jax.random.PRNGKey(seed)
    params = {}
    for i, (a, b) in enumerate(itertools.pairwise(WIDTHS)):
        key, kw = jax.random.split(key)
        params[f"W{i}"] = jax.random.normal(kw, (a, b)) / jnp.sqrt(a)
        params[f"b{i}"] = jnp.zeros(b)
    key, kx, ky = jax.random.split(key, 3)
    x = jax.random.normal(kx, (BATCH, WIDTHS[0]))
    y = jax.random.normal(ky, (BATCH, WIDTHS[-1]))

    def loss(p):
        a = x
        n = len(WIDTHS) - 1
        for i in range(n):
            a = a @ p[f"W{i}"] + p[f"b{i}"]
            if i < n - 1:
                a = jnp.tanh(a)
        return 0.5 * jnp.mean(jnp.sum((a - y) ** 2, axis=1))

    return params, loss


COMPILE = {}
"""Compile (first call) times of the last `timed` call: wall and CPU (process) seconds."""
RUN = {}
"""The fastest run's CPU (process) seconds (`cpu`) and the median run's wall-clock
seconds (`median`) in the last `timed` call: on a shared machine the CPU ratio is
steadier than the wall-clock one."""


def timed(fn, *args, repeats: int = 15):
    """(compile seconds, fastest run seconds) of a jitted function (the minimum is the
    figure least disturbed by other load on a shared machine). The first call's wall
    and process (CPU) times are also left in `COMPILE`."""
    start, cpu = time.perf_counter(), time.process_time()
    jax.block_until_ready(fn(*args))
    compile_s = time.perf_counter() - start
    COMPILE.update(wall=compile_s, cpu=time.process_time() - cpu)
    runs, cpus = [], []
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        jax.block_until_ready(fn(*args))
        runs.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    RUN.update(cpu=min(cpus), median=statistics.median(runs))
    return compile_s, min(runs)


def non_leaf_subtrees(meq) -> int:
    seen = set()
    stack = [t for t, _, c in meq.terms if c]
    while stack:
        t = stack.pop()
        if t not in seen:
            seen.add(t)
            stack.extend(t.children)
    return sum(1 for t in seen if t.children)


def main() -> None:
    params, loss = make_problem()
    n_params = sum(x.size for x in jax.tree_util.tree_leaves(params))
    print(f"MLP {WIDTHS}, batch {BATCH}: {n_params} parameters; device {jax.devices()[0]}")

    grad = jax.jit(jax.grad(loss))
    c_grad, t_grad = timed(grad, params)
    cpu_grad = RUN["cpu"]
    print(f"jax.grad: {t_grad * 1e3:.2f} ms (compile {c_grad:.2f} s)")

    def igr(p, h):
        g = jax.grad(loss)
        return jax.grad(
            lambda q: (
                -(loss(q) + h / 4 * sum(jnp.sum(v**2) for v in jax.tree_util.tree_leaves(g(q))))
            )
        )(p)

    igr_jit = jax.jit(igr)
    c_igr, t_igr = timed(igr_jit, params, H)
    print(
        f"hand-written IGR gradient (double backprop): {t_igr / t_grad:.2f} x grad "
        f"(compile {c_igr:.2f} s)"
    )

    print(
        f"{'field':<22}{'x grad':>8}{'(cpu)':>8}{'goal':>6}{'compile wall s':>16}"
        f"{'compile cpu s':>15}{'non-leaf':>10}"
    )
    ratio1 = None
    for order in (1, 2, 3, 4):
        meq = bea.modified_equation(bea.rules.gd, order)
        k = non_leaf_subtrees(meq)
        goal = 3 * (k + 1)
        # "before": every subtree by its own nested jvp; "after": probes (several trees
        # from the subsets of one nested jvp)
        for label, probes in (("before", False), ("after", True)):
            kernels.PROBES = probes
            field = numeric.vector_field(meq, losses={"E": loss})
            c_f, t_f = timed(field, params, H)
            name = f"gd order {order} {label}"
            print(
                f"{name:<22}{t_f / t_grad:8.2f}{RUN['cpu'] / cpu_grad:8.2f}{goal:6d}{c_f:16.2f}"
                f"{COMPILE['cpu']:15.2f}{k:10d}"
            )
        kernels.PROBES = True
        if order == 1:
            ratio1 = t_f / t_igr
            # agreement with the hand-written IGR gradient (both are -grad(E + h/4 |g|^2))
            diff = jax.tree_util.tree_map(
                lambda a, b: jnp.max(jnp.abs(a - b)), field(params, H), igr_jit(params, H)
            )
            err = max(float(v) for v in jax.tree_util.tree_leaves(diff))
            print(f"  (order-1 field vs IGR gradient: max abs difference {err:.1e})")
    print(f"order-1 field / hand-written IGR gradient: {ratio1:.2f} (goal <= 1.2)")
    adam_against_optax(params, loss, t_grad)


ADAM = {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8}


def interleaved(fns: dict, repeats: int = 15) -> dict:
    """{name: (fastest wall s, median wall s, fastest CPU s)} of jitted zero-argument
    functions run in turns, one call of each per round, so that a change of load on a
    shared machine hits all of them alike (their ratios are the figures to read)."""
    walls: dict = {k: [] for k in fns}
    cpus: dict = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start, cpu = time.perf_counter(), time.process_time()
            jax.block_until_ready(fn())
            walls[name].append(time.perf_counter() - start)
            cpus[name].append(time.process_time() - cpu)
    return {k: (min(walls[k]), statistics.median(walls[k]), min(cpus[k])) for k in fns}


def adam_against_optax(params, loss, t_grad: float) -> None:
    """The Adam fields of orders 1 and 2 on the MLP (derived once over weighted trees,
    for every dimension) against one optax.adam step (gradient + update), timed in
    turns (`interleaved`)."""
    opt = optax.adam(H, b1=ADAM["beta1"], b2=ADAM["beta2"], eps=ADAM["eps"])

    @jax.jit
    def adam_step(p, state):
        updates, state = opt.update(jax.grad(loss)(p), state, p)
        return optax.apply_updates(p, updates), state

    state = opt.init(params)
    fns = {"optax.adam step": lambda: adam_step(params, state)}
    compile_s = {}
    for name, fn in list(fns.items()):
        compile_s[name] = timed(fn, repeats=1)[0], COMPILE["cpu"]
    goals = {1: 2, 2: 10}
    for order in goals:
        meq = bea.modified_equation(bea.rules.adam, order)
        field = numeric.vector_field(meq, {"E": loss}, params=ADAM)  # a pytree: elementwise
        name = f"adam field, order {order}"
        fns[name] = lambda field=field: field(params, H)
        compile_s[name] = timed(fns[name], repeats=1)[0], COMPILE["cpu"]
    runs = interleaved(fns, repeats=41)
    t_a, med_a, cpu_a = runs["optax.adam step"]
    print()
    print(
        f"{'Adam fields':<22}{'ms':>8}{'median':>8}{'x grad':>8}{'x adam':>8}"
        f"{'(cpu)':>8}{'(median)':>9}{'compile wall s':>16}{'compile cpu s':>15}"
    )
    for name, (t_f, med_f, cpu_f) in runs.items():
        c_f, ccpu_f = compile_s[name]
        print(
            f"{name:<22}{t_f * 1e3:8.2f}{med_f * 1e3:8.2f}{t_f / t_grad:8.2f}{t_f / t_a:8.2f}"
            f"{cpu_f / cpu_a:8.2f}{med_f / med_a:9.2f}{c_f:16.2f}{ccpu_f:15.2f}"
        )
    for order, goal in goals.items():
        t_f, med_f, _ = runs[f"adam field, order {order}"]
        print(
            f"order-{order} Adam field / optax.adam step: {t_f / t_a:.2f} fastest, "
            f"{med_f / med_a:.2f} median (goal <= {goal})"
        )


if __name__ == "__main__":
    main()
