"""Layer 3, families: how a rule becomes its modified field over a basis.

The registry is the only place that looks at a rule to choose a family.
"""
