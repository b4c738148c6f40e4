"""What a numerical backend lowers from: the calling convention of rules and the
index form of coordinate-wise fields.

`numeric` (JAX) reads `bea` through the package itself and this namespace only, as a
backend of BSeries.jl hooks into its core: a rule is run on arrays by the same
`call_rule` that traces it, and a coordinate-wise field is lowered from its weighted
trees (`index_form`). A rule that reads the time (`takes_time`) is called with the
symbol `TIME` for t, which the backend evaluates at its own time. `former_names`
keeps a backend's renamed public names importable for one release, as `bea` does.
"""

from ._core._deprecation import former_names as former_names
from ._core._jets import TIME as TIME
from ._families.coordinate._engine import call_coordinate_rule as call_coordinate_rule
from ._printing._index import INDEX_SYMBOLS as INDEX_SYMBOLS
from ._printing._index import index_form as index_form
from ._results._chains import Z as Z
from ._results._losses import _grad_info as grad_info
from ._rules._rule import as_rule as as_rule
from ._rules._rule import call_rule as call_rule
from ._rules._rule import takes_time as takes_time

__all__ = [
    "INDEX_SYMBOLS",
    "TIME",
    "Z",
    "as_rule",
    "call_coordinate_rule",
    "call_rule",
    "former_names",
    "grad_info",
    "index_form",
    "takes_time",
]
