"""The command line on terminals without Unicode (an ASCII or Latin-1 locale).

It printed a `UnicodeEncodeError` traceback at the first θ; it now writes the
characters the encoding lacks in ASCII (theta, grad, ^2) and leaves the others.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest

from bea.cli._encoding import fit_streams


def _bea(encoding: str, *argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "LC_ALL": "C", "PYTHONIOENCODING": encoding}
    return subprocess.run(
        [sys.executable, "-m", "bea.cli", *argv],
        env=env, capture_output=True, timeout=60, check=False,
    )  # fmt: skip


def test_derive_under_an_ascii_locale_prints_ascii():
    proc = _bea("ascii", "derive", "gd", "--order", "2")
    assert proc.returncode == 0 and proc.stderr == b"", proc.stderr.decode(errors="replace")
    out = proc.stdout.decode("ascii")  # every byte is ASCII
    assert "dtheta/dt = - gradE" in out
    assert "- 1/12 h^2 grad^3E(gradE, gradE)" in out
    assert "(grad^2E)^2 gradE" in out


@pytest.mark.parametrize(
    "encoding, text, written",
    [
        ("ascii", "‖∇E‖² + β⁻¹²", "||gradE||^2 + beta^-12"),
        ("ascii", "θ̇ᵢ = Σⱼ Hᵢⱼ ∂ⱼE", "theta'_i = sum_j H_ij d_jE"),
        ("ascii", "L̃ ≥ 0 → ∀", "L~ >= 0 -> \\u2200"),
        # Latin-1 has ² and ³: only what it lacks is spelled out
        ("latin-1", "dθ/dt = - 1/12 h² ∇³E(∇E, ∇E)", "dtheta/dt = - 1/12 h² grad³E(gradE, gradE)"),
    ],
)
def test_a_stream_without_unicode_transliterates_and_escapes_the_rest(encoding, text, written):
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding=encoding)
    fit_streams(stream)
    stream.write(text)
    stream.flush()
    assert raw.getvalue().decode(encoding) == written


def test_a_unicode_stream_is_left_alone():
    stream = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    fit_streams(stream)
    assert stream.errors == "strict"
