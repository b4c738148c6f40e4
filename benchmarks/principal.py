"""Hessian-free principal flow on a 1e5-parameter model: its cost against its HVPs.

The model is a tanh MLP 64-300-300-1 (110,101 parameters) on 256 random points. One
evaluation of the principal-flow field runs `iters` Lanczos iterations (one
Hessian-vector product each) for the top k eigenpairs and combines them with the
gradient. The floor is the HVPs themselves: the benchmark times `iters` HVPs chained in
a `jax.lax.fori_loop` (no Lanczos), each `jax.jvp` of `jax.grad` (`numeric.hvp`), and
reports both that and the whole field in units of one gradient, and their ratio; the
same chain written with `jax.linearize` of `jax.grad` (its passes at theta hoisted by
hand: a few percent cheaper as a bare chain on CPU, though not inside the field, which
therefore keeps `numeric.hvp`), and the field against that stricter floor; the same
chain storing each vector as a row of an (iters + 1, n) array, as any Lanczos that keeps
its basis must (on a CPU the store's memory traffic slows the products themselves); and
how far the top-k Ritz values lie from those of full reorthogonalisation. All functions
are jitted; the field is timed as called on concrete parameters (`pf(theta)`, which
keeps its Lanczos basis array from call to call) and, as `jitted_flow_*`, inside the
caller's `jax.jit` (where the basis is a temporary of each call). Each figure is the
median over `--repeats` rounds after one warm-up, the functions timed in turn within a
round so that a busy machine slows all alike; the chain that stores its vectors is timed
against the bare chain in rounds of its own.
Runs on whatever JAX device is present (CPU unless a GPU build is installed).

The ratio is given in wall-clock time and in CPU time of this process (all threads).
On a CPU the two differ: the HVPs (matrix products) spread over every core, while the
Lanczos vector work (a few passes over n-vectors per step, two of them reductions,
which XLA's CPU runtime runs on one thread, and the matrix-vector products with the
basis where orthogonality is about to be lost) parallelises less well, so the
wall-clock ratio is largest on an idle machine and the CPU-time ratio is the steadier
figure when other work shares the machine.

    .venv/bin/python benchmarks/principal.py [--repeats 7] [--k 20] [--iters 60]
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp

import numeric

jax.config.update("jax_enable_x64", True)


def _rounds(fns: dict, x, repeats: int) -> tuple[dict, dict]:
    """Median wall-clock and CPU seconds of each function, timed in turn within each
    round."""
    for fn in fns.values():
        jax.block_until_ready(fn(x))  # compile and warm up
    wall: dict = {name: [] for name in fns}
    cpu: dict = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t, c = time.perf_counter(), time.process_time()
            jax.block_until_ready(fn(x))
            wall[name].append(time.perf_counter() - t)
            cpu[name].append(time.process_time() - c)
    med = lambda d: {name: statistics.median(v) for name, v in d.items()}  # noqa: E731
    return med(wall), med(cpu)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--iters", type=int, default=60)
    ap.add_argument("--float32", action="store_true", help="run in float32")
    args = ap.parse_args(argv)
    if args.float32:
        jax.config.update("jax_enable_x64", False)

    loss, theta = numeric.principal.toy_mlp((64, 300, 300, 1), n_data=256, seed=0)
    theta = theta.astype(jnp.float32 if args.float32 else jnp.float64)
    n = theta.shape[0]

    def hvps(x):  # the floor: `iters` chained HVPs, nothing else
        return jax.lax.fori_loop(
            0, args.iters, lambda i, v: numeric.hvp(loss, x, v) / jnp.linalg.norm(v), x
        )

    def hvps_linearized(x):  # the same, the passes at x hoisted by hand
        _, hvp_at = jax.linearize(jax.grad(loss), x)
        return jax.lax.fori_loop(0, args.iters, lambda i, v: hvp_at(v) / jnp.linalg.norm(v), x)

    # the same chain, storing each vector as a row of a basis array (donated, reused),
    # as any Lanczos that keeps its basis must: what the store alone costs the products
    basis = [jnp.zeros((args.iters + 1, n), theta.dtype)]

    def hvps_storing(x, Q):
        def body(i, c):
            v, Q = c
            v = numeric.hvp(loss, x, v) / jnp.linalg.norm(v)
            return v, jax.lax.dynamic_update_slice(Q, v[None], (i + 1, 0))  # as the field

        return jax.lax.fori_loop(0, args.iters, body, (x, Q))

    storing = jax.jit(hvps_storing, donate_argnums=1)

    def hvps_store(x):
        v, basis[0] = storing(x, basis[0])
        return v

    pf = numeric.principal_flow(loss, 0.05, method="lanczos", k=args.k, iters=args.iters)
    t, cpu = _rounds(
        {
            "gradient": jax.jit(jax.grad(loss)),
            "hvps": jax.jit(hvps),
            "hvps_linearized": jax.jit(hvps_linearized),
            "field": pf,
            "field_jit": jax.jit(pf),
        },
        theta,
        args.repeats,
    )
    # in rounds of their own: a second basis array in the same rounds would slow the
    # field (each evicts the other's from the caches)
    t_store, _ = _rounds({"hvps": jax.jit(hvps), "hvps_store": hvps_store}, theta, args.repeats)
    # accuracy: the top-k Ritz values against full reorthogonalisation at every step
    key, dt = jax.random.PRNGKey(0), theta.dtype
    try:
        top = [
            jax.jit(
                lambda x, r=r: numeric.principal.lanczos(
                    lambda v: numeric.hvp(loss, x, v),
                    n,
                    args.iters,
                    key,
                    dt,
                    keep=args.k,
                    reorthogonalise=r,
                )[0]
            )(theta)
            for r in ("partial", "full")
        ]
        spread = float(jnp.max(jnp.abs(top[0] - top[1])))
    except TypeError:  # a numeric without the reorthogonalise option
        spread = float("nan")
    out = {
        "device": str(jax.devices()[0]),
        "dtype": str(theta.dtype),
        "parameters": n,
        "k": args.k,
        "lanczos_vectors": args.iters,
        "gradient_s": t["gradient"],
        "hvps_s": t["hvps"],
        "principal_flow_s": t["field"],
        "hvps_in_gradients": t["hvps"] / t["gradient"],
        "principal_flow_in_gradients": t["field"] / t["gradient"],
        "principal_flow_over_hvps": t["field"] / t["hvps"],
        "hvps_cpu_s": cpu["hvps"],
        "principal_flow_cpu_s": cpu["field"],
        "principal_flow_over_hvps_cpu": cpu["field"] / cpu["hvps"],
        "linearized_hvps_over_hvps": t["hvps_linearized"] / t["hvps"],
        "principal_flow_over_linearized_hvps": t["field"] / t["hvps_linearized"],
        "principal_flow_over_linearized_hvps_cpu": cpu["field"] / cpu["hvps_linearized"],
        "hvps_storing_basis_over_hvps": t_store["hvps_store"] / t_store["hvps"],
        "principal_flow_over_hvps_storing_basis": t["field"]
        / t["hvps"]
        / (t_store["hvps_store"] / t_store["hvps"]),
        "jitted_flow_over_hvps": t["field_jit"] / t["hvps"],
        "jitted_flow_over_hvps_cpu": cpu["field_jit"] / cpu["hvps"],
        "top_k_partial_vs_full_reorth": spread,
    }
    for k, v in out.items():
        print(f"{k:>30}: {v:.4g}" if isinstance(v, float) else f"{k:>30}: {v}")
    return out


if __name__ == "__main__":
    main()
