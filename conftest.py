"""Shared test set-up.

* float64 everywhere in JAX (the numerical checks need it);
* Hypothesis without per-example deadlines (exact SymPy arithmetic on a loaded 2-core
  machine has no fixed speed) and derandomised, so a CI run is reproducible.
"""

import os

from hypothesis import settings

os.environ.setdefault("JAX_PLATFORMS", "cpu")

settings.register_profile("bea", deadline=None, derandomize=True)
settings.load_profile("bea")

try:  # bea's own tests do not need JAX; numeric's do
    import jax

    jax.config.update("jax_enable_x64", True)
except ImportError:  # pragma: no cover
    pass
