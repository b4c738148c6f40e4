"""The documentation site: `mkdocs build --strict` (what `make docs` runs) succeeds,
so no docstring, page or link produces a warning, and the site holds the guides, the
notebooks and an API entry for every public name of `bea` and `numeric`.

The build reads the docstrings statically (griffe) and shows the notebooks without
running them, so it needs neither JAX nor a kernel and takes a few seconds; its time
is recorded (`record_property("seconds", ...)`, in the JUnit XML report).
"""

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

pytest.importorskip("mkdocs")
pytest.importorskip("mkdocstrings")
pytest.importorskip("mkdocstrings_handlers.python")
pytest.importorskip("material")

import bea
import numeric

ROOT = Path(__file__).resolve().parent.parent

# one build, on one pytest-xdist worker (make test runs with --dist loadgroup)
pytestmark = pytest.mark.xdist_group("docs")

GUIDES = (
    "conventions",
    "write-your-own-rule",
    "verify-a-formula",
    "training-code",
    "stochastic",
)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    env = {
        **os.environ,
        "NO_MKDOCS_2_WARNING": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    seconds = time.perf_counter() - start
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout}\n{done.stderr}"
    return out, seconds


def test_strict_build(site, record_property):
    out, seconds = site
    record_property("seconds", round(seconds, 2))
    assert (out / "index.html").is_file()
    for guide in GUIDES:
        assert (out / f"{guide}.html").is_file(), guide


def test_notebooks_are_pages(site):
    out, _ = site
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks
    for nb in notebooks:
        page = out / "notebooks" / f"{nb.stem}.html"
        assert page.is_file(), nb.name
        assert (out / "notebooks" / nb.name).is_file(), nb.name  # the download
    index = (out / "notebooks" / "index.html").read_text(encoding="utf-8")
    assert all(nb.stem in index for nb in notebooks)


@pytest.mark.parametrize("package", [bea, numeric], ids=["bea", "numeric"])
def test_every_public_name_is_documented(site, package):
    out, _ = site
    name = package.__name__
    page = (out / "api" / f"{name}.html").read_text(encoding="utf-8")
    missing = []
    for attr in package.__all__:
        if isinstance(getattr(package, attr), type(bea)):  # a namespace: its own page
            if not (out / "api" / f"{name}.{attr}.html").is_file():
                missing.append(f"{name}.{attr} (docs/api/{name}.{attr}.md)")
        elif f'id="{name}.{attr}"' not in page:
            missing.append(f"{name}.{attr} (a '::: {name}.{attr}' line in docs/api/{name}.md)")
    assert not missing, "public names without an API entry: " + ", ".join(missing)


def _entry(page: str, name: str) -> str:
    """The HTML of one API entry: from its heading to the next heading of its level."""
    start = page.index(f'<h3 id="{name}"')
    end = page.find("<h3 id=", start + 1)
    return page[start : end if end > 0 else len(page)]


def test_docstring_sections_render(site):
    # Google-style sections (docs/_ext/griffe_bea.py): "Arguments" as a parameter list,
    # "Example:" and "Example (caption):" as code blocks, "a, b:" attributes one by one
    out, _ = site
    page = (out / "api" / "bea.html").read_text(encoding="utf-8")
    entry = _entry(page, "bea.stochastic_modified_equation")
    assert "Parameters:" in entry and "<code>sampled</code>" in entry
    assert "Returns:" in entry
    entry = _entry(page, "bea.family_of")
    assert '<span class="gp">&gt;&gt;&gt; </span>' in entry  # a highlighted doctest
    page = (out / "api" / "numeric.html").read_text(encoding="utf-8")
    entry = _entry(page, "numeric.check_formula")
    assert "Implicit gradient regularisation" in entry
    assert '<span class="gp">&gt;&gt;&gt; </span>' in entry
    entry = _entry(page, "numeric.WeakOrderCheck")
    for name in ("mean_errors", "second_moment_errors"):
        assert f'title="numeric.WeakOrderCheck.{name}">{name}</span></code></b>' in entry


NAME = re.compile(r"(?<![\w.])(bea|numeric)((?:\.[A-Za-z_]\w*)+)")


def _public(package: ModuleType, path: list[str]) -> bool:
    """Whether `package.path[0]...` starts with a public name (after a namespace
    module, one of its public names; `bea.rules.NAME` stands for any rule)."""
    if path[0] == "__all__":
        return True
    if path[0] not in package.__all__:
        return False
    obj = getattr(package, path[0])
    if isinstance(obj, ModuleType) and len(path) > 1:
        return path[1] in getattr(obj, "__all__", ()) or path[1] == "NAME"
    return True


def test_pages_use_public_names():
    # as the README and the notebooks (tests/test_public_api.py); page file names
    # such as api/bea.rules.md are links, not names
    packages = {"bea": bea, "numeric": numeric}
    for md in sorted((ROOT / "docs").rglob("*.md")):
        text = md.read_text(encoding="utf-8")
        bad = sorted(
            {
                m.group(0)
                for m in NAME.finditer(text)
                if m.group(2).split(".")[1:] and not m.group(2).endswith(".md")
                if not _public(packages[m.group(1)], m.group(2).split(".")[1:])
            }
        )
        assert not bad, f"{md.relative_to(ROOT)} uses names outside the public API: {bad}"
