"""Shared test set-up.

* float64 everywhere in JAX (the numerical checks need it);
* XLA's CPU backend at optimisation level 0 and, where this jaxlib knows the flag,
  with its older fusion emitter: the suite is dominated by compiling many small
  kernels, which the first makes about 15% faster and the second about 25% faster
  again (the principal-flow and memory tests: 63 s to 48 s); the arithmetic is the
  same IEEE float64 (XLA uses no fast-math on CPU either way). Notebooks and CLI
  subprocesses inherit the flags; the benchmarks, run as scripts, do not. XLA aborts
  on a flag it does not know, so the second is set only when jaxlib's library holds
  its name;
* Hypothesis without per-example deadlines (exact SymPy arithmetic on a loaded 2-core
  machine has no fixed speed) and derandomised, so a CI run is reproducible.
"""

import importlib.util
import mmap
import os
from pathlib import Path

from hypothesis import settings


def _jaxlib_knows(flag: str) -> bool:
    """Whether one of jaxlib's shared libraries holds the flag's name (an mmap scan)."""
    spec = importlib.util.find_spec("jaxlib")
    if spec is None or spec.origin is None:
        return False
    for lib in Path(spec.origin).parent.glob("*.so"):
        if lib.stat().st_size == 0:
            continue
        with open(lib, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            if m.find(flag.encode()) >= 0:
                return True
    return False


def _add_xla_flag(flag: str) -> None:
    name = flag.removeprefix("--").split("=")[0]
    if name not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flag}".strip()


os.environ.setdefault("JAX_PLATFORMS", "cpu")
_add_xla_flag("--xla_backend_optimization_level=0")
if _jaxlib_knows("xla_cpu_use_fusion_emitters"):
    _add_xla_flag("--xla_cpu_use_fusion_emitters=false")

settings.register_profile("bea", deadline=None, derandomize=True)
settings.load_profile("bea")

try:  # bea's own tests do not need JAX; numeric's do
    import jax

    jax.config.update("jax_enable_x64", True)
except ImportError:  # pragma: no cover
    pass
