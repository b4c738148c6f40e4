"""The coordinate-wise family: rules with elementwise square roots, divisions and
signs, expanded per coordinate."""
