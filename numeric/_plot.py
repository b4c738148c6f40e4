"""Log-log plots of error against learning rate (matplotlib, Agg backend, PNG)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

__all__ = ["loglog_plot"]


def loglog_plot(path, series: Sequence[tuple], title: str) -> str:
    """Write a log-log PNG of error against h.

    Arguments:
        path: the output file (its folder is created).
        series: `(label, hs, errors, slope, expected)` per line; a dashed reference
            line of slope `expected` is drawn through the last point.
        title: the plot's title.

    Returns:
        The path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = os.fspath(path)
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5.5, 4.0))
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
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
