"""Layer 1 of numeric: lowering equations and losses to JAX functions."""
