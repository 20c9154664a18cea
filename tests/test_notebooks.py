"""Every notebook is a jupytext pair (.ipynb + percent-format .py, in sync), is committed without outputs, and
runs top to bottom in fast mode (CI=true, SCALEARN_FAST=1)."""
import difflib
import os
import re
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
TWINS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
CELL_TIMEOUT = int(os.environ.get("SCALEARN_CELL_TIMEOUT", "900"))  # seconds per cell (a busy 2-core CPU)
COLAB = "https://colab.research.google.com/github/"


def _code(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def _markdown(nb) -> str:
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def test_mode_detection(monkeypatch):
    from scalearn_lite import course

    for name in ("CI", "SCALEARN_FAST", "SCALEARN_MODE"):
        monkeypatch.delenv(name, raising=False)
    assert course.detect_mode() in ("cpu", "full")
    monkeypatch.setenv("SCALEARN_FAST", "1")
    assert course.fast_mode() and course.detect_mode() == "fast"
    monkeypatch.delenv("SCALEARN_FAST")
    monkeypatch.setenv("CI", "true")
    assert course.detect_mode() == "fast"
    monkeypatch.setenv("SCALEARN_MODE", "cpu")  # an explicit mode wins
    assert course.detect_mode() == "cpu"
    monkeypatch.setenv("SCALEARN_MODE", "gpu")
    with pytest.raises(ValueError, match="SCALEARN_MODE"):
        course.detect_mode()
    assert course.by_mode("full", fast=1, cpu=2) == 2 and course.by_mode("fast", fast=1, cpu=2) == 1
    assert course.PRESET_OF_MODE == {"fast": "tiny", "cpu": "cpu", "full": "paper"}


def test_every_notebook_has_its_text_twin():
    """Each .ipynb has a .py twin and each .py an .ipynb (a lone file means a pair was added or removed by half)."""
    assert NOTEBOOKS, "no numbered notebooks found"
    assert [p.stem for p in NOTEBOOKS] == [p.stem for p in TWINS]


def _cells(nb):
    return [(c.cell_type, c.source) for c in nb.cells]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_pair_is_in_sync(path):
    """The .py twin (what reviewers read) and the .ipynb (what Colab opens) hold the same cells, read by jupytext."""
    jupytext = pytest.importorskip("jupytext")
    ipynb, twin = jupytext.read(path), jupytext.read(path.with_suffix(".py"))
    assert ipynb.metadata.get("jupytext", {}).get("formats") == "ipynb,py:percent", \
        f"{path.name} is not paired: jupytext --set-formats ipynb,py:percent {path.name}"
    assert twin.metadata.get("jupytext", {}).get("formats") == "ipynb,py:percent"
    a, b = _cells(ipynb), _cells(twin)
    i = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None if len(a) == len(b) else min(len(a), len(b)))
    if i is not None:
        x, y = (a[i:i + 1] or [("", "")])[0], (b[i:i + 1] or [("", "")])[0]
        lines = difflib.unified_diff(f"[{x[0]}]\n{x[1]}".splitlines(), f"[{y[0]}]\n{y[1]}".splitlines(),
                                     path.name, path.stem + ".py", lineterm="", n=1)
        pytest.fail(f"{path.name} and its .py twin drifted apart ({len(a)} vs {len(b)} cells), first at cell {i}:\n"
                    + "\n".join(list(lines)[:12]) + "\nrun `jupytext --sync notebooks/*.ipynb` (the newer file wins)")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_has_no_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for i, cell in enumerate(_code(nb)):
        assert cell.outputs == [], f"{path.name}: code cell {i} has committed outputs"
        assert cell.execution_count is None, f"{path.name}: code cell {i} has an execution count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_structure(path):
    """Colab badge to itself, run-time line, one parameters cell, an open-the-hood check, exercises, next link."""
    nb = nbformat.read(path, as_version=4)
    text = _markdown(nb)
    badge = re.search(re.escape(COLAB) + r"[\w.-]+/[\w.-]+/blob/main/notebooks/([\w.]+)\)", text)
    assert badge and badge.group(1) == path.name, f"{path.name}: Colab badge missing or pointing elsewhere"
    assert "**Run time**" in text
    params = [c for c in _code(nb) if re.search(r"^MODE = ", c.source, re.M)]
    assert len(params) == 1, f"{path.name}: expected exactly one parameters cell"
    assert "## Open the hood" in text
    hood = nb.cells.index(next(c for c in nb.cells if "## Open the hood" in c.source))
    assert any("assert" in c.source for c in nb.cells[hood:] if c.cell_type == "code")
    assert text.count("<details>") >= 2, f"{path.name}: needs at least two collapsed solutions"
    assert re.search(r"\]\(0\d_[\w]+\.ipynb\)", text), f"{path.name}: no link to another notebook"
    assert all(len(c.source.splitlines()) <= 20 for c in _code(nb)), f"{path.name}: a code cell is long"


@pytest.fixture(scope="module")
def fast_env(data_dir, tmp_path_factory):
    """Fast mode for the kernels: CI flags, the data, and a run folder shared by all notebooks of the session."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CI", "true")
        mp.setenv("SCALEARN_FAST", "1")
        mp.setenv("SCALEARN_DATA_DIR", str(data_dir))
        mp.setenv("SCALEARN_RUNS_DIR", str(tmp_path_factory.mktemp("notebook-runs")))
        mp.delenv("SCALEARN_MODE", raising=False)
        yield


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_fast_mode(path, fast_env):
    """Top to bottom with nbclient; any error fails (the 'open the hood' cells assert their recomputations)."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3", allow_errors=False,
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    print(f"{path.stem}: {time.perf_counter() - start:.0f} s")
    outputs = [o for c in _code(nb) for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    if any("viz." in c.source for c in _code(nb)):
        assert any("image/png" in o.get("data", {}) for o in outputs), f"{path.name} drew no figure"
