"""Hessian-free principal flow on a 1e5-parameter model: time per evaluation vs a gradient.

The model is a tanh MLP 64-300-300-1 (110,101 parameters) on 256 random points. One
evaluation of the principal-flow field runs Lanczos with full reorthogonalisation for
the top k = 20 eigenpairs (m = 60 Lanczos vectors, each one Hessian-vector product via
`jax.jvp` of `jax.grad`) and combines them with the gradient. Both are jitted; the
figures are medians of `--repeats` runs after one warm-up, on whatever JAX device is
present (CPU unless a GPU build is installed).

    .venv/bin/python benchmarks/principal.py [--repeats 5] [--k 20] [--iters 60]
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp

import numeric

jax.config.update("jax_enable_x64", True)


def _time(fn, x, repeats: int) -> float:
    jax.block_until_ready(fn(x))  # compile and warm up
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn(x))
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--iters", type=int, default=60)
    ap.add_argument("--float32", action="store_true", help="run in float32")
    args = ap.parse_args(argv)
    if args.float32:
        jax.config.update("jax_enable_x64", False)

    loss, theta = numeric.toy_mlp((64, 300, 300, 1), n_data=256, seed=0)
    theta = theta.astype(jnp.float32 if args.float32 else jnp.float64)
    n = theta.shape[0]
    grad = jax.jit(jax.grad(loss))
    hvp = jax.jit(lambda x: numeric.hvp(loss, x, x))
    pf = numeric.principal_flow(loss, 0.05, method="lanczos", k=args.k, iters=args.iters)
    field = jax.jit(pf)

    t_grad = _time(grad, theta, args.repeats)
    t_hvp = _time(hvp, theta, args.repeats)
    t_pf = _time(field, theta, args.repeats)
    out = {
        "device": str(jax.devices()[0]),
        "dtype": str(theta.dtype),
        "parameters": n,
        "k": args.k,
        "lanczos_vectors": args.iters,
        "gradient_s": t_grad,
        "hvp_s": t_hvp,
        "principal_flow_s": t_pf,
        "hvp_over_gradient": t_hvp / t_grad,
        "principal_flow_over_gradient": t_pf / t_grad,
    }
    for k, v in out.items():
        print(f"{k:>30}: {v:.4g}" if isinstance(v, float) else f"{k:>30}: {v}")
    return out


if __name__ == "__main__":
    main()
