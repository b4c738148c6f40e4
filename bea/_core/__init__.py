"""Layer 1, the core: trees, colours, exact scalars, the B-series logarithm and the errors."""
