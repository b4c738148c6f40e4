"""MkDocs hooks: the notebooks of `notebooks/` as pages, unexecuted; the table of
built-in rules.

Each notebook becomes `notebooks/<name>.md` (Markdown cells as they are, code cells as
Python blocks; stored outputs, if any, are left out) next to a copy of the `.ipynb`
itself to download, and the `Notebooks` entry of the navigation lists them all, so a
new notebook appears without editing `mkdocs.yml`. Nothing is executed: the build
stays fast and needs neither a kernel nor JAX.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
NAV_TITLE = "Notebooks"
RULES_MARKER = "<!-- bea:builtin-rules -->"


def _notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def _page(path: Path) -> str:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    parts = []
    for cell in cells:
        source = "".join(cell.get("source", "")).rstrip()
        if not source:
            continue
        if cell["cell_type"] == "markdown":
            parts.append(source)
        elif cell["cell_type"] == "code":
            parts.append(f"```python\n{source}\n```")
        if len(parts) == 1 and parts[0].startswith("# "):
            # right under the title: where the notebook lives and how to run it
            parts.append(
                f'!!! note "Notebook"\n    This page is [`notebooks/{path.name}`]({path.name}) '
                "shown without running it, so without outputs: open it in Jupyter to see "
                "the tables and plots. `make test` runs every notebook top to bottom."
            )
    return "\n\n".join(parts) + "\n"


def _title(path: Path) -> str:
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        source = "".join(cell.get("source", ""))
        if cell["cell_type"] == "markdown" and source.startswith("# "):
            return source.splitlines()[0][2:].strip()
    return path.stem


def _index() -> str:
    rows = "\n".join(
        f"| [{p.stem}]({p.stem}.md) | {_title(p)} | [{p.name}]({p.name}) |" for p in _notebooks()
    )
    return (
        "# Notebooks\n\n"
        "The notebooks in `notebooks/` teach the library by example: each derives, renders "
        "and checks numerically. They are shown here as they are stored, without outputs "
        "(the site is built without running them); `make test` runs each one top to "
        "bottom; open them in Jupyter to see their tables and plots.\n\n"
        "| notebook | subject | download |\n|---|---|---|\n" + rows + "\n"
    )


def on_config(config, **kwargs):
    pages = [f"notebooks/{p.stem}.md" for p in _notebooks()]
    for i, item in enumerate(config["nav"] or []):
        if isinstance(item, dict) and NAV_TITLE in item:
            config["nav"][i] = {NAV_TITLE: ["notebooks/index.md", *pages]}
    return config


def on_files(files, config, **kwargs):
    files.append(File.generated(config, "notebooks/index.md", content=_index()))
    for path in _notebooks():
        files.append(File.generated(config, f"notebooks/{path.stem}.md", content=_page(path)))
        files.append(File.generated(config, f"notebooks/{path.name}", abs_src_path=str(path)))
    return files


def _param(name, value) -> str:
    text = str(value)
    return f"`{name}`" if text == name else f"`{name}={text}`"


def _rules_table() -> str:
    """One row per built-in rule, from the rules themselves (bea is SymPy only, so
    importing it is cheap; the checkout's own copy, not an installed one)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import bea

    rules = dict(bea.rules.RULES)  # then the coordinate-wise ones, public names only
    for name in bea.rules.__all__:
        rule = getattr(bea.rules, name)
        if isinstance(rule, bea.Rule):
            rules.setdefault(rule.name, rule)
    rows = []
    for r in rules.values():
        family = bea.family_of(r).name
        params = ", ".join(_param(k, v) for k, v in r.params if k not in ("A", "b")) or "–"
        memory = ", ".join(f"`{m}`" for m in r.memory) or "–"
        what = r.description.replace("*", "·")
        rows.append(f"| `{r.name}` | {what} | {family} | {params} | {memory} | `{r.time}` |")
    return (
        "| rule | what it does | family | parameters | memory | time per call |\n"
        "|---|---|---|---|---|---|\n" + "\n".join(rows)
    )


def on_page_markdown(markdown, page, config, files, **kwargs):
    if RULES_MARKER in markdown:
        markdown = markdown.replace(RULES_MARKER, _rules_table())
    return markdown
