"""Layer 4, printing: text, LaTeX and index notation of series, and reading exact values back."""
