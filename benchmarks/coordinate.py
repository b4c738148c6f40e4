"""Derivation time of the coordinate family: Adam (ε, β₁, β₂ symbolic), order 2.

Prints CPU time (time.process_time) per dimension and the size of the result (SymPy
operation count of the h² term of coordinate 1). Figures, not a test.

    .venv/bin/python benchmarks/coordinate.py [dimensions ...]
"""

from __future__ import annotations

import sys
import time

import sympy as sp

from bea._coordinate import coordinate_modified_equation
from bea._coordinate_rules import adam


def main(dimensions=(2, 3)) -> None:
    print(f"{'rule':>6} {'order':>5} {'d':>3} {'cpu s':>9} {'ops of h² term':>15}")
    for d in dimensions:
        start = time.process_time()
        meq = coordinate_modified_equation(adam(), 2, dimension=d)
        cpu = time.process_time() - start
        ops = sp.count_ops(meq.field_at(2)[0])
        print(f"{'adam':>6} {2:>5} {d:>3} {cpu:9.2f} {ops:>15}", flush=True)


if __name__ == "__main__":
    main(tuple(int(a) for a in sys.argv[1:]) or (2, 3))
