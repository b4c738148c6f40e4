"""Layer 1 of numeric: lowering equations and losses to JAX functions, and the float64
flows and slope fits every later layer measures with."""
