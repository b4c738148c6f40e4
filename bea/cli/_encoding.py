"""Output on terminals without Unicode: an ASCII spelling of the mathematics.

The command line prints θ, ∇, ², ‖ and friends. Under an ASCII or Latin-1 locale
(`LC_ALL=C`, `PYTHONIOENCODING=ascii`) Python's streams refuse them with a
`UnicodeEncodeError`. `fit_streams` gives such a stream an error handler that writes
each character the encoding lacks in ASCII instead: Greek letters by name (θ -> theta),
∇ as grad, runs of superscripts and subscripts as ^12 and _ij, and anything else as a
Python escape (\\u2200). Characters the encoding has are left alone (Latin-1 keeps ²).

Example:
    >>> "dθ/dt = - 1/12 h² ∇³E(∇E, ∇E)".encode("ascii", errors=ERRORS)
    b'dtheta/dt = - 1/12 h^2 grad^3E(gradE, gradE)'
"""

from __future__ import annotations

import codecs
import sys

__all__ = ["ERRORS", "fit_streams", "transliterate"]

ERRORS = "bea-ascii"
"""The name of the codec error handler registered here."""

_GREEK = (
    "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi "
    "rho final_sigma sigma tau upsilon phi chi psi omega"
).split()
_WORDS = {chr(0x3B1 + i): name for i, name in enumerate(_GREEK)}
_WORDS.update({chr(0x391 + i): name.capitalize() for i, name in enumerate(_GREEK)})
_WORDS.update(
    {
        "ε": "eps",
        "ϵ": "eps",
        "ς": "sigma",
        "Σ": "sum",
        "Π": "prod",
        "∇": "grad",
        "∂": "d",
        "−": "-",
        "–": "-",
        "—": "--",
        "…": "...",
        "‖": "||",
        "√": "sqrt",
        "·": "*",
        "×": "x",
        "⊙": "*",
        "±": "+/-",
        "≥": ">=",
        "≤": "<=",
        "≠": "!=",
        "≈": "~=",
        "→": "->",
        "↦": "|->",
        "∞": "inf",
        "′": "'",
        "″": "''",
        "½": "1/2",
        "\u0303": "~",  # combining tilde: Ẽ is E~
        "\u0307": "'",  # combining dot above: θ̇ is theta'
        "Ẽ": "E~",
        "é": "e",
    }
)
_SUPERSCRIPTS = dict(zip("⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁽⁾ⁿⁱᵀ", "0123456789+-()niT", strict=True))
_SUBSCRIPTS = dict(zip("₀₁₂₃₄₅₆₇₈₉₊₋₍₎ᵢⱼₖₙₘₜ", "0123456789+-()ijknmt", strict=True))


def transliterate(text: str, start: int, end: int) -> str:
    """ASCII for `text[start:end]`, read in its context (a run of superscripts that
    began before `start` gets no second `^`)."""
    out = []
    for i in range(start, end):
        ch = text[i]
        prev = text[i - 1] if i > 0 else ""
        if ch in _SUPERSCRIPTS:
            out.append(("" if prev in _SUPERSCRIPTS else "^") + _SUPERSCRIPTS[ch])
        elif ch in _SUBSCRIPTS:
            out.append(("" if prev in _SUBSCRIPTS else "_") + _SUBSCRIPTS[ch])
        elif ch in _WORDS:
            out.append(_WORDS[ch])
        else:
            out.append(ch.encode("ascii", "backslashreplace").decode("ascii"))
    return "".join(out)


def _handler(err: UnicodeError):
    if not isinstance(err, UnicodeEncodeError):
        raise err
    return transliterate(err.object, err.start, err.end), err.end


codecs.register_error(ERRORS, _handler)

_SAMPLE = "θ∇²‖"


def fit_streams(*streams) -> None:
    """Give each text stream (default: stdout and stderr) that cannot write the
    mathematics the ASCII error handler; a stream that can is left as it is."""
    for stream in streams or (sys.stdout, sys.stderr):
        encoding = getattr(stream, "encoding", None)
        if not encoding or not hasattr(stream, "reconfigure"):
            continue
        try:
            _SAMPLE.encode(encoding)
        except UnicodeEncodeError:
            pass
        except LookupError:  # pragma: no cover - an encoding Python does not know
            continue
        else:
            continue
        try:
            stream.reconfigure(errors=ERRORS)
        except (OSError, ValueError):  # pragma: no cover - a closed or detached stream
            pass
