"""Two-player games: what the modified equations of game rules say (a namespace).

- `modified_jacobian(meq, variables, ...)`: the Jacobian of the concrete modified field
  at a fixed point (J̃ = J - h/2 Δ at order 1, Rosca et al., ICML 2021), whose
  eigenvalues decide the local stability of simultaneous and alternating updates;
- `comparison_table(convention)`: Rosca et al.'s Table 1, generated from derivations;
- `game_principal_flow(rule, ...)` and its result `GamePrincipalFlow`: the principal
  flow of a linearised game (all orders of h at once).

The game rules themselves are in `bea.rules` (`zero_sum_simultaneous`,
`zero_sum_alternating`, `general_sum_*`, `extragradient`, `optimistic`, ...).
"""

from ._results._game_principal import GamePrincipalFlow as GamePrincipalFlow
from ._results._game_principal import game_principal_flow as game_principal_flow
from ._results._games import comparison_table as comparison_table
from ._results._games import modified_jacobian as modified_jacobian

__all__ = ["GamePrincipalFlow", "comparison_table", "game_principal_flow", "modified_jacobian"]
