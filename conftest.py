"""Shared test set-up: float64 everywhere in JAX (the numerical checks need it)."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

try:  # bea's own tests do not need JAX; numeric's do
    import jax

    jax.config.update("jax_enable_x64", True)
except ImportError:  # pragma: no cover
    pass
