"""The stochastic family: rules whose oracles are sampled afresh at every step."""
