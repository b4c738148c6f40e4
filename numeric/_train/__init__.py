"""Layer 5 of numeric: training code built from derivations (optax transformations,
drift-adjusted rates)."""
