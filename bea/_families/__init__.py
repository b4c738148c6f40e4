"""Layer 3, families: how a rule becomes the series of its one-step map (the only place that looks at a rule to choose one)."""
