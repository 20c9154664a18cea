"""Set the one Colab setting and spread it to every notebook: `python notebooks/publish.py SOURCE [--repo owner/name]`.

SOURCE is what the install cell pip-installs on Colab: a published version (`scalearn_lite==1.2.3`) or a git URL at
a tag or commit (`git+https://github.com/<owner>/scalearn_lite@v1.2.3`). The script writes it into
notebooks/colab_install.py, pastes that file verbatim as the first code cell of every notebook's .py twin, points
each Colab badge at the same release (the git URL's repository at its tag or commit; for a PyPI version, `--repo
owner/name` at the tag v<version>), then syncs the .ipynb files with jupytext. Without SOURCE it only re-pastes the
cell as it is (after an edit of colab_install.py). tests/test_notebooks_execute.py checks that every first cell is
the file.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path
from typing import Optional

HERE = Path(__file__).resolve().parent
CELL = HERE / "colab_install.py"
BADGE = re.compile(r"https://colab\.research\.google\.com/github/[\w.-]+/[\w.-]+/blob/[\w.-]+"
                   r"/notebooks/([\w.]+\.ipynb)")
SOURCE_LINE = re.compile(r'^SOURCE = ".*?"', re.M)
GIT = re.compile(r"git\+https://github\.com/([\w.-]+/[\w.-]+?)(?:\.git)?@([\w.-]+)")
VERSION = re.compile(r"scalearn[_-]lite==([\w.]+)")


def set_source(cell: str, source: str) -> str:
    """The install cell's text with SOURCE = `source` (its comment kept)."""
    if len(SOURCE_LINE.findall(cell)) != 1:
        raise ValueError("colab_install.py must hold exactly one line starting with SOURCE = \"...\"")
    return SOURCE_LINE.sub(f'SOURCE = "{source}"', cell)


def colab_base(source: str, repo: Optional[str] = None) -> str:
    """https://colab.research.google.com/github/<owner>/<name>/blob/<ref> of the release SOURCE names."""
    git = GIT.fullmatch(source)
    if git:
        return f"https://colab.research.google.com/github/{git.group(1)}/blob/{git.group(2)}"
    version = VERSION.fullmatch(source)
    if version and repo:
        return f"https://colab.research.google.com/github/{repo}/blob/v{version.group(1)}"
    raise ValueError(f"cannot build a Colab link from SOURCE {source!r}: use a git URL on github.com "
                     "(git+https://github.com/<owner>/<name>@v1.2.3), or a version with --repo <owner>/<name>")


def paste_cell(twin: str, cell: str) -> str:
    """A notebook's percent-format text with its first code cell replaced by `cell`."""
    lines = twin.splitlines()
    start = lines.index("# %%")  # the first code cell (markdown cells are "# %% [markdown]")
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("# %%"))
    return "\n".join(lines[:start + 1] + cell.strip().splitlines() + [""] + lines[end:]) + "\n"


def set_badges(twin: str, base: str) -> str:
    """Every Colab badge link of a notebook pointed at `base` (colab_base), the notebook's own name kept."""
    return BADGE.sub(lambda m: f"{base}/notebooks/{m.group(1)}", twin)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?",
                        help="scalearn_lite==1.2.3 or git+https://github.com/<owner>/<name>@v1.2.3")
    parser.add_argument("--repo", help="owner/name on GitHub, for the badges of a PyPI SOURCE")
    parser.add_argument("--no-sync", action="store_true", help="do not run jupytext --sync afterwards")
    args = parser.parse_args(argv)
    cell = CELL.read_text()
    base = None
    if args.source:
        base = colab_base(args.source, args.repo)
        cell = set_source(cell, args.source)
        CELL.write_text(cell)
    twins = sorted(HERE.glob("[0-9][0-9]_*.py"))
    for twin in twins:
        text = paste_cell(twin.read_text(), cell)
        twin.write_text(set_badges(text, base) if base else text)
        if not args.no_sync:
            subprocess.run([sys.executable, "-m", "jupytext", "--sync", str(twin)], check=True)
    print(f"{len(twins)} notebooks: install cell = {CELL.name}" + (f", badges -> {base}" if base else ""))


if __name__ == "__main__":
    main()
