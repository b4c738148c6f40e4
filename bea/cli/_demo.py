"""`make demo` / `bea demo`: the main job on a built-in default.

Derives gradient descent and the two-player alternating rule to order 3, prints
them in gradient and elementary-differential notation, then (when the numeric
extra is installed) checks the derivations against the real iterations and writes
`out/demo_check.png`.
"""

from __future__ import annotations

from collections.abc import Callable

from .._equation._modified import modified_equation
from .._results._losses import modified_loss
from .._results._sgd import sgd_expected
from .._rules._builtin import alternating, gd, heavy_ball, zero_sum_alternating

__all__ = ["DEMO_PLOT", "run_demo"]

DEMO_PLOT = "out/demo_check.png"
"""Where the demo's plot goes, relative to the working directory."""


def run_demo(
    out: Callable[[str], None] = print, verify: bool = True, path: str | None = DEMO_PLOT
) -> int:
    """Print the demo's derivations; with `verify`, check them and plot to `path`."""
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
    out("")
    out("== Heavy ball, v' = beta v - h grad E, theta' = theta + v', on its slow manifold ==")
    out(modified_equation(heavy_ball, order=2).text())
    out(modified_loss(modified_equation(heavy_ball, order=1)).text())
    if not verify:
        return 0
    try:
        from ._verify import demo_verification
    except ImportError:  # pragma: no cover - depends on the install
        out("\n(numeric extra not installed: skipping the numerical check)")
        return 0
    out("")
    out("== Numerical check against the discrete maps ==")
    return demo_verification(print_fn=out, path=path)
