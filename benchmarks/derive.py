"""Derivation speed and memory: CPU time, wall time and peak resident memory per case.

Each case runs in a fresh subprocess so that its peak memory (`ru_maxrss`, which
includes the interpreter and SymPy, about 55 MB) is its own. CPU time
(`time.process_time`) is the figure to compare on a shared machine; wall time also
counts waiting for a core.

Goals (2-core development machine): gradient descent costs a constant time per tree,
so order 12 (20,067 trees) takes <= 3 s CPU and order 14 (140,297 trees) <= 30 s CPU
and <= 600 MB; the other cases <= 10 s each; the stochastic modified equations (SME)
of gd at order 2 and SAM at order 1 <= 5 s each.

The coordinate-wise family (Adam with beta1, beta2, eps symbolic) is timed over weighted
trees, for every dimension at once (goals: order 2 <= 5 s, order 3 <= 60 s; RMSProp
order 3 <= 20 s; "terms" counts the trees), and per coordinate in dimension d, the
engine kept for rules that couple coordinates (its "terms" are the additive terms of the
expanded field, "ops h2" the SymPy operation count of the h^2 term of coordinate 1).
Dimension 3 takes about two minutes of CPU; `--quick` leaves it out.

    .venv/bin/python benchmarks/derive.py          # the cases below
    .venv/bin/python benchmarks/derive.py --quick  # without Adam in dimension 3
    .venv/bin/python benchmarks/derive.py --big    # also gd order 16 (force=True)
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time

import sympy as sp

import bea

CASES = {
    "gd, order 10 (trees up to 11 vertices)": lambda: bea.modified_equation(bea.rules.gd, 10),
    "gd, order 12 (trees up to 13 vertices)": lambda: bea.modified_equation(bea.rules.gd, 12),
    "gd, order 14 (trees up to 15 vertices)": lambda: bea.modified_equation(bea.rules.gd, 14),
    "alternating, symbolic alpha and lambda, order 5": lambda: bea.modified_equation(
        bea.rules.alternating, 5
    ),
    "sgd(4), order 3": lambda: bea.modified_equation(bea.rules.sgd(4), 3),
    "sgd(4), order 5": lambda: bea.modified_equation(bea.rules.sgd(4), 5),
    "rk4, order 6": lambda: bea.modified_equation(bea.rules.rk4, 6),
    "heavy_ball, symbolic beta, order 3": lambda: bea.modified_equation(bea.rules.heavy_ball, 3),
    "heavy_ball, symbolic beta, order 4": lambda: bea.modified_equation(bea.rules.heavy_ball, 4),
    "heavy_ball, symbolic beta, order 5": lambda: bea.modified_equation(bea.rules.heavy_ball, 5),
    "nesterov, symbolic beta, order 5": lambda: bea.modified_equation(bea.rules.nesterov, 5),
    **{
        f"SME of gd, order {n}": (lambda n=n: bea.stochastic_modified_equation(bea.rules.gd, n))
        for n in (2, 3)
    },
    **{
        f"SME of sam, symbolic rho, order {n}": (
            lambda n=n: bea.stochastic_modified_equation(bea.rules.sam, n)
        )
        for n in (1, 2)
    },
}

COORDINATE_CASES = {
    **{
        f"adam, symbolic beta1 beta2 eps, order {n}, every dimension": (
            lambda n=n: bea.modified_equation(bea.rules.adam, n)
        )
        for n in (1, 2, 3)
    },
    "rmsprop, symbolic rho eps, order 3, every dimension": (
        lambda: bea.modified_equation(bea.rules.rmsprop, 3)
    ),
    **{
        f"adam, symbolic beta1 beta2 eps, order 2, per coordinate d={d}": (
            lambda d=d: bea.modified_equation(bea.rules.adam, 2, dimension=d)
        )
        for d in (2, 3)
    },
}
"""Coordinate-wise derivations: over weighted trees (every dimension at once; "terms"
counts the trees of the index form) and per coordinate in dimension d."""

QUICK_SKIP = ("adam, symbolic beta1 beta2 eps, order 2, per coordinate d=3",)
"""Left out by `--quick`."""

BIG_CASES = {
    "gd, order 16 (trees up to 17 vertices, force)": lambda: bea.modified_equation(
        bea.rules.gd, 16, force=True
    ),
}


LOSS_CASES = {
    "gd, order 6": (lambda: bea.rules.gd, 6),
    "sgd(3), order 3": (lambda: bea.rules.sgd(3), 3),
    "zero_sum_alternating, symbolic, order 3": (lambda: bea.rules.zero_sum_alternating, 3),
    "zero_sum_alternating, symbolic, order 5": (lambda: bea.rules.zero_sum_alternating, 5),
}


def loss_overhead() -> None:
    """Loss recognition time relative to the derivation (goal: at most 2x); best of 3."""
    print()
    print(f"{'loss recognition (best of 3)':<50} {'derive s':>8} {'loss s':>8} {'ratio':>7}")
    for name, (make, order) in LOSS_CASES.items():
        rule = make()
        derive, loss = [], []
        for _ in range(3):
            t0 = time.perf_counter()
            meq = bea.modified_equation(rule, order)
            t1 = time.perf_counter()
            for block in meq.blocks:
                bea.modified_loss(meq, block, held_fixed=True)
            t2 = time.perf_counter()
            derive.append(t1 - t0)
            loss.append(t2 - t1)
        d, lo = min(derive), min(loss)
        print(f"{name:<50} {d:>8.3f} {lo:>8.3f} {lo / d:>7.2f}")


def _size(meq) -> dict:
    """Terms of a B-series equation; for a coordinate-wise one, the additive terms of its
    expanded field and the operation count of the h^2 term of coordinate 1."""
    if isinstance(meq, bea.StochasticModifiedEquation):
        return {"terms": sum(len(p.terms) for p in (meq.drift, meq.diffusion, meq.remainder))}
    if hasattr(meq, "terms"):
        return {"terms": len(meq.terms)}
    if meq.expansion.index_terms is not None:
        return {"terms": len(meq.expansion.index_terms_of("theta"))}
    terms = sum(len(sp.Add.make_args(sp.expand(e))) for row in meq.field for e in row)
    return {"terms": terms, "ops": int(sp.count_ops(meq.field_at(2)[0]))}


def run_case(name: str) -> None:
    make = {**CASES, **COORDINATE_CASES, **BIG_CASES}[name]
    c0, w0 = time.process_time(), time.perf_counter()
    meq = make()
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"cpu": cpu, "wall": wall, "peak_mb": peak_kb / 1024, **_size(meq)}))


def _measure(name: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--case", name], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--case":
        run_case(sys.argv[2])
        return
    flags = sys.argv[1:]
    cases = list(CASES) + (list(BIG_CASES) if "--big" in flags else [])
    print(f"{'case':<50} {'CPU s':>7} {'wall s':>7} {'peak MB':>8} {'terms':>7} {'us/term':>8}")
    for name in cases:
        r = _measure(name)
        per = 1e6 * r["cpu"] / max(r["terms"], 1)
        print(
            f"{name:<50} {r['cpu']:>7.2f} {r['wall']:>7.2f} {r['peak_mb']:>8.0f} "
            f"{r['terms']:>7} {per:>8.1f}",
            flush=True,
        )
    print()
    print(
        f"{'coordinate-wise':<50} {'CPU s':>7} {'wall s':>7} {'peak MB':>8} {'terms':>7} "
        f"{'ops h2':>8}"
    )
    for name in COORDINATE_CASES:
        if "--quick" in flags and name in QUICK_SKIP:
            print(f"{name:<50} (left out by --quick)")
            continue
        r = _measure(name)
        print(
            f"{name:<50} {r['cpu']:>7.2f} {r['wall']:>7.2f} {r['peak_mb']:>8.0f} "
            f"{r['terms']:>7} {r.get('ops', '-'):>8}",
            flush=True,
        )
    loss_overhead()


if __name__ == "__main__":
    main()
