"""The result of an order check: errors against learning rates, the fitted slope and
the verdict, shared by the tree and the coordinate-wise checks."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from bea import BeaTypeError, BeaValueError

from .._lower._flow import (
    as_float64,
)
from .._lower._static import split
from ._plot import loglog_figure, save_figure

__all__ = [
    "EXACT",
    "TOL",
    "OrderCheck",
    "check_state",
    "default_hs",
    "format_table",
    "html_table",
    "local_slopes",
    "state_size",
]

TOL = 0.25
"""How far below the expected slope a fitted slope may fall and still pass."""


def default_hs(order: int) -> tuple[float, ...]:
    """Four learning rates over a factor 3 where an order-`order` check of a unit-scale
    problem is in the asymptotic regime and well above the integrator's tolerance."""
    lo = {0: 0.002, 1: 0.004, 2: 0.008, 3: 0.012, 4: 0.016}.get(order, 0.02)
    return tuple(float(x) for x in np.geomspace(lo, 3 * lo, 4))


def local_slopes(hs: Sequence[float], errors: Sequence[float]) -> list[float]:
    """The slope between each error and the previous one (NaN for the first)."""
    out = [float("nan")]
    for i in range(1, len(hs)):
        a, b = errors[i - 1], errors[i]
        ok = all(math.isfinite(v) and v > 0 for v in (a, b))
        out.append(math.log(b / a) / math.log(hs[i] / hs[i - 1]) if ok else float("nan"))
    return out


def html_table(hs, errors, title: str, verdict: str) -> str:
    """A small HTML table of h, error and local slope, with a title and a verdict."""
    import html

    rows = "".join(
        f"<tr><td>{h:.4g}</td><td>{e:.3e}</td><td>{'' if not math.isfinite(s) else f'{s:.2f}'}"
        "</td></tr>"
        if math.isfinite(e)
        else f"<tr><td>{h:.4g}</td><td>failed</td><td></td></tr>"
        for h, e, s in zip(hs, errors, local_slopes(hs, errors), strict=True)
    )
    return (
        f"<div><b>{html.escape(title)}</b><table><thead><tr><th>h</th><th>error</th>"
        f"<th>local slope</th></tr></thead><tbody>{rows}</tbody></table>"
        f"<p>{html.escape(verdict)}</p></div>"
    )


def format_table(hs, errors, title: str = "") -> str:
    lines = [title] if title else []
    lines.append(f"{'h':>10}  {'error':>11}  {'slope':>6}")
    for h, e, s in zip(hs, errors, local_slopes(hs, errors), strict=True):
        es = f"{e:11.3e}" if math.isfinite(e) else f"{'failed':>11}"
        ss = f"{s:6.2f}" if math.isfinite(s) else f"{'':>6}"
        lines.append(f"{h:10.4g}  {es}  {ss}")
    return "\n".join(lines)


EXACT = "exact:"
"""How a note of `OrderCheck` starts when the map equals the flow at every h tried."""


@dataclass(frozen=True)
class OrderCheck:
    """The result of `check_order`.

    Arguments:
        rule: the rule's name.
        order: N, the order of the modified equation checked.
        steps: K, the calls of the rule compared with the flow over K*T.
        hs: the learning rates.
        errors: |map - flow| per h (NaN where that run failed).
        slope: the fitted log-log slope.
        expected: the slope a correct order-N equation gives (N+2, or more when the
            next corrections vanish).
        notes: what happened along the way (dropped runs, float64, ...).
        problem: the problem's name, when known.
        transient: the steps run to bring the memory to its slow manifold before the
            compared step (coordinate equations of rules with memory; 0 otherwise).

    `passed` is a bool: the fitted slope reaches the expected one less `TOL` (0.25),
    and every run gave a finite error.
    """

    rule: str
    order: int
    steps: int
    hs: tuple[float, ...]
    errors: tuple[float, ...]
    slope: float
    expected: float
    notes: tuple[str, ...] = field(default=())
    problem: str | None = None
    transient: int = 0

    def passes(self, tol: float = TOL) -> bool:
        """Whether the fitted slope reaches the expected one less `tol`, every error
        being finite (a run that gave NaN or inf never passes).

        A slope above the expected one passes: the next corrections of the rule
        vanish on this problem, so the error falls faster than h^(N+2).
        """
        if not self.finite:
            return False
        if self.exact:
            return True
        return math.isfinite(self.slope) and self.slope >= self.expected - tol

    @property
    def passed(self) -> bool:
        """`passes(TOL)`: the slope reaches the expected one less 0.25, every error finite."""
        return self.passes()

    @property
    def finite(self) -> bool:
        """Whether every run gave a finite error (none NaN or inf)."""
        return all(math.isfinite(e) for e in self.errors)

    @property
    def exact(self) -> bool:
        """Whether the map equals the flow to round-off at every h, also at large ones
        (sign descent on its region: the field −sign ∇E is the map's own step)."""
        return not math.isfinite(self.slope) and any(n.startswith(EXACT) for n in self.notes)

    @property
    def round_off(self) -> bool:
        """Whether no slope could be fitted because the errors are at round-off."""
        return not math.isfinite(self.slope) and any("round-off" in n for n in self.notes)

    def verdict(self, tol: float = TOL) -> str:
        """One line: PASS or FAIL with the slope, in words.

        Example: `PASS: slope 4.99 >= 4 (the next correction vanishes)`.
        """
        if not self.finite:
            bad = ", ".join(
                f"{h:.4g}"
                for h, e in zip(self.hs, self.errors, strict=True)
                if not math.isfinite(e)
            )
            return f"FAIL: the run at h = {bad} gave no finite error (NaN or inf)"
        if self.exact:
            return "PASS: the map equals the flow to round-off at every h (an exact equation)"
        if not math.isfinite(self.slope):
            why = (
                "the errors are at round-off for every h tried; give larger --hs"
                if self.round_off
                else "fewer than two usable runs"
            )
            return f"FAIL: no slope ({why})"
        e = f"{self.expected:g}"
        if self.slope > self.expected + 0.75:
            return f"PASS: slope {self.slope:.2f} >= {e} (the next correction vanishes)"
        if self.passes(tol):
            return f"PASS: slope {self.slope:.2f}, expected {e}"
        return (
            f"FAIL: slope {self.slope:.2f}, expected {e}: the order-{self.order} equation "
            f"does not match the map to O(h^{e})"
        )

    def to_dict(self) -> dict:
        """The result as plain JSON-ready data (NaN errors become None)."""

        def num(x):
            return float(x) if math.isfinite(x) else None

        return {
            "rule": self.rule,
            "problem": self.problem,
            "order": self.order,
            "steps": self.steps,
            "hs": list(self.hs),
            "errors": [num(e) for e in self.errors],
            "slope": num(self.slope),
            "expected": self.expected,
            "passed": self.passed,
            "verdict": self.verdict(),
            "notes": list(self.notes),
            "transient": self.transient,
        }

    def _title(self) -> str:
        where = f" on {self.problem}" if self.problem else ""
        k = f", {self.steps} steps" if self.steps > 1 else ""
        return f"{self.rule}{where}, order {self.order}{k}"

    def _repr_html_(self) -> str:
        return html_table(self.hs, self.errors, self._title(), self.verdict())

    def table(self) -> str:
        """A text table of h, error and the slope between consecutive errors."""
        title = f"{self._title()}: fitted slope {self.slope:.2f} (expected {self.expected:g})"
        return format_table(self.hs, self.errors, title)

    def __str__(self) -> str:
        text = self.table()
        return text + "".join(f"\nnote: {n}" for n in self.notes)

    def plot(self, path=None, *, others: Sequence[OrderCheck] = (), ax=None):
        """A log-log plot of error against h, with `others` on the same axes.

        Arguments:
            path: also write the figure there (.png, .pdf or .svg; folder created).
            others: more checks to draw on the same axes.
            ax: a matplotlib `Axes` to draw on (default: a new figure's).

        Returns:
            The `matplotlib.figure.Figure`; the global backend is left unchanged.
        """
        series = [
            (f"order {c.order}", c.hs, c.errors, c.slope, c.expected) for c in (self, *others)
        ]
        where = f" on {self.problem}" if self.problem else ""
        fig = loglog_figure(series, f"{self.rule}{where}: map vs modified flow", ax=ax)
        if path is not None:
            save_figure(fig, path)
        return fig


def check_state(state0, static: bool = False):
    """`state0` as float64 leaves; integer, complex, string or empty states are refused.

    An integer state cannot be differentiated (JAX's `grad` needs floats), and a
    string is no state at all. With `static`, leaves that are not numbers or arrays
    (an `equinox.nn.MLP`'s activation) are allowed beside the parameters and kept.
    """
    leaves = jax.tree_util.tree_leaves(state0)
    parameters = jax.tree_util.tree_leaves(split(state0)[0])
    if static and parameters:
        leaves = parameters
    if not leaves:
        raise BeaValueError("state0 is empty; give the starting point, e.g. jnp.array([0.5, 1.0])")
    for leaf in leaves:
        if isinstance(leaf, str | bytes) or leaf is None:
            raise BeaTypeError(
                f"state0 holds {leaf!r}, not numbers; give float arrays, e.g. jnp.array([0.5])"
            )
        try:
            dtype = jnp.asarray(leaf).dtype
        except (TypeError, ValueError):
            raise BeaTypeError(
                f"state0 holds a {type(leaf).__name__}, not numbers; give float arrays"
            ) from None
        if not jnp.issubdtype(dtype, jnp.floating):
            raise BeaTypeError(
                f"state0 has {dtype} entries; give floats, e.g. jnp.array([1.0, 2.0]) "
                "(gradients need real floating-point states; mark an integer that is no parameter "
                "static, e.g. equinox.field(static=True))"
            )
    return as_float64(state0)


def state_size(state0) -> int:
    """The number of coordinates of `state0` (all its array leaves together)."""
    return int(sum(np.size(leaf) for leaf in jax.tree_util.tree_leaves(split(state0)[0])))
