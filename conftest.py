"""Shared test set-up.

* float64 everywhere in JAX (the numerical checks need it);
* XLA's backend at optimisation level 0: the suite is dominated by compiling many
  small kernels, which this makes about 15% faster overall; the arithmetic is the
  same IEEE float64 (XLA uses no fast-math on CPU either way). Notebooks and CLI
  subprocesses inherit it; the benchmarks, run as scripts, do not;
* Hypothesis without per-example deadlines (exact SymPy arithmetic on a loaded 2-core
  machine has no fixed speed) and derandomised, so a CI run is reproducible.
"""

import os

from hypothesis import settings

os.environ.setdefault("JAX_PLATFORMS", "cpu")
_O0 = "--xla_backend_optimization_level=0"
if _O0 not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_O0}".strip()

settings.register_profile("bea", deadline=None, derandomize=True)
settings.load_profile("bea")

try:  # bea's own tests do not need JAX; numeric's do
    import jax

    jax.config.update("jax_enable_x64", True)
except ImportError:  # pragma: no cover
    pass
