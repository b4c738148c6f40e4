"""Shared test set-up.

* float64 everywhere in JAX (the numerical checks need it);
* XLA's CPU backend at optimisation level 0 and, with the jaxlib it was
  measured on, its older fusion emitter: the suite is dominated by compiling many small
  kernels, which the first makes about 15% faster and the second about 25% faster
  again (the principal-flow and memory tests: 63 s to 48 s); the arithmetic is the
  same IEEE float64 (XLA uses no fast-math on CPU either way). Notebooks and CLI
  subprocesses inherit the flags; the benchmarks, run as scripts, do not. XLA aborts
  on a flag it does not know, so the second is set only for the jaxlib versions it
  was measured with (0.10);
* Hypothesis without per-example deadlines (exact SymPy arithmetic on a loaded 2-core
  machine has no fixed speed) and derandomised, so a CI run is reproducible.
"""

import importlib.metadata
import os

from hypothesis import settings


def _jaxlib_minor() -> tuple[int, int] | None:
    """jaxlib's (major, minor) version, without importing it; None when absent."""
    try:
        major, minor = importlib.metadata.version("jaxlib").split(".")[:2]
        return int(major), int(minor)
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return None


def _add_xla_flag(flag: str) -> None:
    name = flag.removeprefix("--").split("=")[0]
    if name not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flag}".strip()


os.environ.setdefault("JAX_PLATFORMS", "cpu")
_add_xla_flag("--xla_backend_optimization_level=0")
if _jaxlib_minor() == (0, 10):  # the versions this flag was measured with
    _add_xla_flag("--xla_cpu_use_fusion_emitters=false")

settings.register_profile("bea", deadline=None, derandomize=True)
settings.load_profile("bea")

try:  # bea's own tests do not need JAX; numeric's do
    import jax

    jax.config.update("jax_enable_x64", True)
except ImportError:  # pragma: no cover
    pass


def pytest_collection_modifyitems(config, items):
    """The notebooks first: they are the longest tests (13 to 28 s each), and xdist
    hands tests out in collection order, so started last they would leave one worker
    idle while the other finishes them."""
    first = [it for it in items if "test_notebook_runs" in it.nodeid]
    items[:] = first + [it for it in items if "test_notebook_runs" not in it.nodeid]
