"""Layer 6, results built on the equation: losses, principal flows, drift, SGD
averages, games, modifying integrators."""
