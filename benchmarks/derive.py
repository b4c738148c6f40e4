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


if __name__ == "__main__":
    main()
