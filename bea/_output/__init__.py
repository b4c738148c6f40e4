"""Layer 7, output: generated JAX source."""
