"""Log-log plots of error against learning rate, as matplotlib `Figure`s.

The figures are built with `matplotlib.figure.Figure` directly, not through
`pyplot`: no global state is touched, the backend in use (inline plots in a
notebook, a GUI, Agg in a script) is left as it is, and no figure accumulates in
pyplot's registry. A notebook shows the returned `Figure` inline; `save_figure`
writes it to a file (PNG, PDF or SVG by the file's extension).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

from bea import BeaValueError

__all__ = ["PLOT_FORMATS", "loglog_figure", "save_figure"]

PLOT_FORMATS = ("png", "pdf", "svg")
"""The file extensions `save_figure` writes."""


def loglog_figure(series: Sequence[tuple], title: str, ax=None):
    """A log-log plot of error against h.

    Arguments:
        series: `(label, hs, errors, slope, expected)` per line; a dashed reference
            line of slope `expected` is drawn through the last point.
        title: the plot's title.
        ax: a matplotlib `Axes` to draw on (default: a new figure's).

    Returns:
        The `matplotlib.figure.Figure` drawn on.

    Example:
        >>> fig = loglog_figure([("gd", [0.1, 0.2], [1e-4, 8e-4], 3.0, 3.0)], "check")
        >>> type(fig).__name__
        'Figure'
    """
    if ax is None:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(5.5, 4.0))
        ax = fig.add_subplot()
    else:
        fig = ax.get_figure()
    for label, hs, errors, slope, expected in series:
        pts = [(h, e) for h, e in zip(hs, errors, strict=True) if math.isfinite(e) and e > 0]
        if not pts:
            continue
        x, y = zip(*pts, strict=True)
        s = f"{slope:.2f}" if math.isfinite(slope) else "n/a"
        (line,) = ax.loglog(x, y, "o-", label=f"{label}: slope {s}")
        if expected is not None and math.isfinite(expected):
            x1, y1 = x[-1], y[-1]
            ref = [y1 * (xi / x1) ** expected for xi in x]
            ax.loglog(x, ref, "--", color=line.get_color(), alpha=0.5, label=f"slope {expected:g}")
    ax.set_xlabel("learning rate h")
    ax.set_ylabel("error |map - flow|")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def save_figure(fig, path) -> str:
    """Write `fig` to `path` (its folder is created); returns the path written.

    A `path` that is an existing folder gets `plot.png` inside it; the extension
    must be one of `PLOT_FORMATS`.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, "plot.png")
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    if ext not in PLOT_FORMATS:
        raise BeaValueError(
            f"path {path!r} has no known image extension; end it in "
            + ", ".join(f".{e}" for e in PLOT_FORMATS)
        )
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
