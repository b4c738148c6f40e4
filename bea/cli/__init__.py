"""The `bea` command line (`bea rules | derive | loss | principal | verify | demo`).

This subpackage is the only part of `bea` that imports the JAX side, `numeric`, and
only for `bea verify` and the end of `bea demo`; the other commands are pure SymPy.
Run it as the `bea` script or as `python -m bea.cli`.

Example:
    >>> from bea.cli import main
    >>> main(["derive", "gd", "--order", "0"])
    gd: modified equation to order 0 in h, flow over time h
    dθ/dt = - ∇E
    0
"""

from ._main import main as main

__all__ = ["main"]
