"""numeric: JAX kernels for `bea` derivations, checked against the discrete maps.

Everything JAX lives here; `bea` itself is pure SymPy.
"""

# --- kernels and verification (issue 3) ---

# --- principal flow and drift-adjusted learning rates (issue 5) ---

__all__: list[str] = []
