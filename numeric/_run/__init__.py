"""Layer 2 of numeric: running rules (discrete maps, memory, shuffled SGD) and flows."""
