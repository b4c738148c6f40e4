"""The notebooks in notebooks/: each runs top to bottom without error (nbclient), and
each is stored light and uses the public API only.

The kernel is the Python running the tests (a kernelspec for `sys.executable` is
written to a temporary folder), so notebooks see the same environment as the tests.
One test per notebook, so pytest-xdist can spread them over workers; each records
its run time (`record_property("seconds", ...)`, in the JUnit XML report).
"""

import json
import os
import re
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
IDS = [p.name for p in NOTEBOOKS]


@pytest.fixture(scope="module")
def kernel_dir(tmp_path_factory):
    base = tmp_path_factory.mktemp("jupyter")
    spec = base / "kernels" / "bea-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "bea tests",
                "language": "python",
            }
        )
    )
    return base


def test_every_notebook_is_found():
    # the seven notebooks of the README's layout; a renamed or lost one fails here
    names = {p.stem for p in NOTEBOOKS}
    assert {
        "01_modified_equations",
        "02_losses_and_games",
        "03_principal_flow",
        "04_momentum",
        "05_adaptive",
        "06_drift_control",
        "07_sgd_noise",
    } <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_runs(path, kernel_dir, tmp_path, monkeypatch, record_property):
    monkeypatch.setenv("JUPYTER_PATH", str(kernel_dir))
    monkeypatch.setenv("JAX_PLATFORMS", os.environ.get("JAX_PLATFORMS", "cpu"))
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, kernel_name="bea-test", timeout=600, resources={"metadata": {"path": str(tmp_path)}}
    )
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError on the first failing cell
    record_property("seconds", round(time.perf_counter() - start, 1))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_is_stored_without_outputs(path):
    # outputs (figures as base64) would bloat the repository: commit cleared notebooks
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, "a notebook without code"
    assert not [i for i, c in enumerate(code) if c.get("outputs")], "clear the outputs"
    assert path.stat().st_size < 100_000


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_uses_public_names_and_leaves_the_backend(path):
    source = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells)
    private = re.findall(r"\b(?:bea|numeric)\._\w+", source)
    assert not private, f"private modules {private}: use the public names"
    assert "matplotlib.use" not in source
