"""Layer 5, the equation: `ModifiedEquation`, the one result of `modified_equation`."""
