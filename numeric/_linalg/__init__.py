"""Layer 4 of numeric: Lanczos and the principal flow on many parameters."""
