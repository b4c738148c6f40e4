"""Derivation speed and memory: wall time and peak resident memory per case.

Each case runs in a fresh subprocess so that the peak memory is its own.
Goals (issue 2, 2-core development machine): gd to order 10 <= 5 s, the others
<= 10 s each, peak memory <= 2 GB.

    .venv/bin/python benchmarks/derive.py
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time

import bea

CASES = {
    "gd, order 10 (trees up to 11 vertices)": lambda: bea.modified_equation(bea.rules.gd, 10),
    "alternating, symbolic alpha and lambda, order 5": lambda: bea.modified_equation(
        bea.rules.alternating, 5
    ),
    "sgd(4), order 3": lambda: bea.modified_equation(bea.rules.sgd(4), 3),
    "rk4, order 6": lambda: bea.modified_equation(bea.rules.rk4, 6),
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


def run_case(name: str) -> None:
    t0 = time.perf_counter()
    meq = CASES[name]()
    dt = time.perf_counter() - t0
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": dt, "peak_mb": peak_kb / 1024, "terms": len(meq.terms)}))


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--case":
        run_case(sys.argv[2])
        return
    print(f"{'case':<50} {'wall s':>8} {'peak MB':>8} {'terms':>7}")
    for name in CASES:
        out = subprocess.run(
            [sys.executable, __file__, "--case", name], capture_output=True, text=True, check=True
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{name:<50} {r['seconds']:>8.2f} {r['peak_mb']:>8.0f} {r['terms']:>7}")
    loss_overhead()


if __name__ == "__main__":
    main()
