"""Layer 2, rules: the `Rule` type, its calling convention and the built-in rules."""
