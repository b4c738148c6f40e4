"""`make demo` / `bea demo`: the main job on a built-in default.

Derives gradient descent and the two-player alternating rule to order 3, prints
them in gradient and elementary-differential notation, then (when the numeric
extra is installed) checks the derivations against the real iterations.
"""

from __future__ import annotations

from collections.abc import Callable

from ._losses import modified_loss
from ._modified import modified_equation
from ._rules import alternating, gd, zero_sum_alternating
from ._sgd import sgd_expected

__all__ = ["run_demo"]


def run_demo(out: Callable[[str], None] = print, verify: bool = True) -> int:
    out("== Gradient descent, theta' = theta - h grad E ==")
    meq = modified_equation(gd, order=3)
    out(meq.text("gradient"))
    out("")
    out("-- the same in elementary differentials (vertex E = grad E) --")
    out(meq.text("elementary"))
    out("")
    out("== Alternating two-player updates (Rosca et al. 2021), symbolic alpha, lambda ==")
    out("   phi' = phi + alpha h f(phi, theta),  theta' = theta + lambda h g(phi', theta)")
    out(modified_equation(alternating, order=3).text("elementary"))
    out("")
    out("== Modified losses ==")
    out(modified_loss(modified_equation(gd, order=1)).text())
    out("")
    out(modified_loss(sgd_expected(3, 1)).text())
    out("")
    meq = modified_equation(zero_sum_alternating, order=1, convention="per_player")
    out(modified_loss(meq, "theta").text())
    if verify:
        try:
            import numeric
        except ImportError:  # pragma: no cover - depends on the install
            out("\n(numeric extra not installed: skipping the numerical check)")
            return 0
        hook = getattr(numeric, "demo_verification", None)
        if hook is not None:
            out("")
            out("== Numerical check against the discrete maps ==")
            return hook(print_fn=out)
    return 0
