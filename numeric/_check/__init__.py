"""Layer 3 of numeric: order and formula checks against the discrete maps, test problems, plots."""
