"""What serves the notebooks: the run mode and setup, paths, each mode's target and sources (`defaults`), thin
wrappers over the package that write into the notebooks' run folders, and the tables they show. The numbers behind
the plots are analysis.py, the plots viz.py, the probing experiment of notebook 02 probing.py.

Modes: "fast" (CI=true or SCALEARN_FAST=1: preset tiny, tiny subsets, minutes), "cpu" (a laptop: preset
cpu, the embedded model) and "full" (a GPU, e.g. Colab: preset colab, roberta-base, AdapterHub's pf adapters).
Stand-ins for full mode without downloads (tests, an offline GPU): $SCALEARN_FULL_MODEL names a base-model folder
used instead of roberta-base (`preset_of`), $SCALEARN_HUB_MIRROR a folder of hub adapters (hub.mirror_folder).
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import List, NamedTuple, Optional, Sequence, Union

import pandas as pd
import torch

from . import data as data_mod
from .config import Preset, get_preset
from .hub import hub_adapter_ids, hub_refs
from .files import read_json
from .tasks import get_task
from .train import set_seed

MODES = ("fast", "cpu", "full")
PRESET_OF_MODE = {"fast": "tiny", "cpu": "cpu", "full": "colab"}  # the paper preset stays for `reproduce`
HUB_SET_OF_MODE = {"fast": None, "cpu": None, "full": "pf"}  # AdapterHub's adapters as sources (hub.HUB_SETS)
ENV_FULL_MODEL = "SCALEARN_FULL_MODEL"  # a base-model folder that stands in for full mode's roberta-base
ENV_FULL_OVERRIDES = "SCALEARN_FULL_OVERRIDES"  # JSON {field: value} over full mode's preset (tests: few steps)
ENV_HOME = "SCALEARN_HOME"  # one folder for runs and the stage-1 cache (default on Colab: see work_dir)
COLAB_ROOT = Path("/content")  # Colab's working folder; Google Drive mounts at <it>/drive
# The target and source tasks of notebooks 00, 03, 04 and 05 per mode (01 and 02 choose their own for what they
# show). cpu: STS-B, the target where ScaLearn gained most over Adapter on validation
# (docs/results/target-selection-cpu).
DEFAULT_TASKS = {"fast": ("mrpc", ("sst2", "rte")), "cpu": ("stsb", ("sst2", "qnli", "mrpc", "rte")),
                 "full": ("rte", ("mnli", "qnli", "qqp", "sst2", "stsb", "mrpc", "cola"))}
# AdapterHub's roberta-base Pfeiffer (seq_bn) adapters: a full-mode user can skip stage 1 with them. A view of the
# one table in hub.py (HUB_SETS); hub.HUB_CAVEAT: they were selected on the dev split we use as test.
HUB_ADAPTERS = hub_adapter_ids("pfeiffer")


# ------------------------------------------------------------------------------------------ mode
def fast_mode() -> bool:
    """True under CI (CI=true) or SCALEARN_FAST=1: the tiny preset and tiny subsets."""
    return os.environ.get("CI", "").lower() == "true" or os.environ.get("SCALEARN_FAST", "") == "1"


def detect_mode() -> str:
    """"fast" (CI / SCALEARN_FAST=1), else "full" on a GPU, else "cpu"; SCALEARN_MODE=<mode> forces one."""
    forced = os.environ.get("SCALEARN_MODE", "").strip().lower()
    if forced:
        if forced not in MODES:
            raise ValueError(f"SCALEARN_MODE must be one of {MODES}, got {forced!r}")
        return forced
    if fast_mode():
        return "fast"
    return "full" if torch.cuda.is_available() else "cpu"


def preset_of(mode: str) -> Preset:
    """The preset of a mode (PRESET_OF_MODE). Full mode only: $SCALEARN_FULL_MODEL replaces its base model with a
    folder (a stand-in for roberta-base: tests, a machine without the download), $SCALEARN_FULL_OVERRIDES (JSON)
    other fields (e.g. '{"max_train": 64}': the tests' few steps). The preset keeps its name."""
    import json

    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    preset = get_preset(PRESET_OF_MODE[mode])
    if mode != "full":
        return preset
    changes = json.loads(os.environ.get(ENV_FULL_OVERRIDES, "").strip() or "{}")
    stand_in = os.environ.get(ENV_FULL_MODEL, "").strip()
    return preset.with_(**changes, **({"model": stand_in} if stand_in else {}))


class Defaults(NamedTuple):
    """A mode's target task and its sources, for the notebooks."""

    target: str
    sources: List[str]  # references: task names, or AdapterHub ids where the mode uses them (HUB_SET_OF_MODE)


def defaults(mode: str) -> Defaults:
    """The notebooks' target and sources in `mode` (DEFAULT_TASKS); in full mode the sources are AdapterHub's "pf"
    adapters where one is published. `TARGET, SOURCES = defaults(MODE)`."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    target, tasks = DEFAULT_TASKS[mode]
    return Defaults(target, source_refs(tasks, hub=HUB_SET_OF_MODE[mode]))


def by_mode(mode: str, **choices):
    """The value for `mode` among keyword choices fast=..., cpu=..., full=... (a missing full falls back to cpu)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if mode not in choices and mode == "full" and "cpu" in choices:
        return choices["cpu"]
    if mode not in choices:
        raise ValueError(f"no value given for mode {mode!r} (got {sorted(choices)})")
    return choices[mode]


# ----------------------------------------------------------------------------------------- paths
def repo_root() -> Optional[Path]:
    """The repository checkout holding this package (None when it is installed elsewhere, e.g. Colab)."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "notebooks").is_dir() else None


def find_data_dir() -> Optional[Path]:
    """Local GLUE/SuperGLUE: $SCALEARN_DATA_DIR, else ../shared/data beside the repository; None → the hub."""
    env = os.environ.get(data_mod.ENV_DATA_DIR)
    if env:
        return Path(env).expanduser()
    bases = [b for b in (repo_root(), Path.cwd(), Path.cwd().parent) if b is not None]
    for base in bases:
        candidate = base.parent / "shared" / "data"
        if (candidate / "glue_data").is_dir():
            return candidate.resolve()
    return None


def on_colab() -> bool:
    """True in a Colab runtime (its google.colab module is loaded)."""
    return "google.colab" in sys.modules


def work_dir() -> Optional[Path]:
    """One folder for the runs and the stage-1 cache, shared by every notebook: $SCALEARN_HOME; on Colab
    <Google Drive>/scalearn_lite when Drive is mounted at /content/drive (kept across sessions and runtimes), else
    /content/scalearn_lite (kept while the runtime lives); elsewhere None (the repository's folders)."""
    env = os.environ.get(ENV_HOME)
    if env:
        return Path(env).expanduser()
    if not on_colab():
        return None
    drive = COLAB_ROOT / "drive" / "MyDrive"
    return (drive if drive.is_dir() else COLAB_ROOT) / "scalearn_lite"


def runs_root() -> Path:
    """Where notebook run folders go: $SCALEARN_RUNS_DIR, else <work_dir>/runs, else <repo>/runs/notebooks."""
    env = os.environ.get("SCALEARN_RUNS_DIR")
    if env:
        return Path(env).expanduser()
    if work_dir() is not None:
        return work_dir() / "runs"
    return (repo_root() or Path.cwd()) / "runs" / "notebooks"


@dataclass
class Env:
    mode: str
    preset: str  # the preset of `mode` (PRESET_OF_MODE)
    device: str
    data_dir: Optional[Path]
    cache_dir: Path
    runs_dir: Path
    seed: int


# What each mode means, shown by setup() in every notebook (one text instead of a paragraph pasted into six).
MODE_TEXT = {
    "fast": "the `tiny` preset: the embedded encoder cut to 2 layers, a few hundred training rows, a few epochs. "
            "Its numbers are a smoke test, not results. Chosen automatically under CI (`CI=true`) or with "
            "`SCALEARN_FAST=1`.",
    "cpu": "the `cpu` preset: the 6-layer embedded all-MiniLM-L6-v2 on subsampled training sets. "
           "The default without a GPU (a laptop).",
    "full": "the `colab` preset: roberta-base with AdapterHub's published `pf` adapters as sources, targets cut to "
            "2,000 rows and 3 epochs so that each notebook fits a class session on Colab's free T4 GPU (the paper's "
            "full protocol is the `paper` preset of `scalearn-lite reproduce`). The default on a GPU.",
}


def mode_text(mode: str) -> str:
    """The modes in markdown, the chosen one first: what `setup()` displays at the top of every notebook."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    others = " ".join(f"`{m}`: {MODE_TEXT[m]}" for m in MODES if m != mode)
    return (f"**Mode `{mode}`**: {MODE_TEXT[mode]}\n\nOther modes. {others} The presets are defined in "
            "`scalearn_lite/config.py`; set `MODE` in the parameters cell, or `SCALEARN_MODE=fast|cpu|full` "
            "before starting Jupyter, to choose another.")


def _show(markdown: str) -> None:
    """Markdown in a notebook, plain text in a terminal."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        get_ipython = None
    if get_ipython is not None and get_ipython() is not None:
        display({"text/markdown": markdown, "text/plain": markdown}, raw=True)
    else:
        print(markdown)


def setup(seed: int = 0, mode: Optional[str] = None, verbose: bool = True) -> Env:
    """Every notebook's setup: mode (fast / cpu / full) and its preset, device, data / cache / run folders
    (exported as env vars for the package), seed; with `verbose`, shows what the mode means and prints the rest."""
    mode = mode or detect_mode()
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    data_dir = find_data_dir()
    if data_dir is not None:
        os.environ[data_mod.ENV_DATA_DIR] = str(data_dir)
    home = work_dir()
    if not os.environ.get(data_mod.ENV_CACHE_DIR) and (home is not None or repo_root() is None):
        # one cache for every notebook: the work folder (Colab), else beside the notebook (pip-installed)
        os.environ[data_mod.ENV_CACHE_DIR] = str((home or Path.cwd()) / "data_cache")
    set_seed(seed)
    _quiet_adapters_warning()
    device = f"cuda ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else "cpu"
    env = Env(mode, PRESET_OF_MODE[mode], device, data_dir, data_mod.cache_dir(), runs_root(), seed)
    if on_colab() and home == COLAB_ROOT / "scalearn_lite" and verbose:
        print("runs and adapters are kept in /content/scalearn_lite while this runtime lives; to keep them across "
              "notebooks and sessions, mount Google Drive first: from google.colab import drive; "
              "drive.mount('/content/drive')")
    if verbose:
        _show(mode_text(mode))
        print(f"mode     {mode} (preset {env.preset})\ndevice   {device}, torch {torch.__version__}, "
              f"{torch.get_num_threads()} threads\npackage  {Path(__file__).resolve().parent}\n"
              f"data     {data_dir or 'Hugging Face hub'}\ncache    {env.cache_dir}\nruns     {env.runs_dir}\n"
              f"seed     {seed}")
    return env


def source_refs(tasks: Sequence[str], hub: Union[bool, str] = False) -> List[str]:
    """Task names as sources, or AdapterHub's roberta-base adapters where one is published: hub=True (the
    "pfeiffer" set) or a set name ("pfeiffer", "pf"; see hub.HUB_SETS). Hub scores are optimistic (hub.HUB_CAVEAT)."""
    return hub_refs(tasks, hub)


def _quiet_adapters_warning() -> None:
    """Drop adapters' "adapters available but none are activated" log line: loading a source adapter to copy its
    weights out (never to run it) triggers it every time, and it reads like an error to a student."""
    import logging

    log = logging.getLogger("adapters.model_mixin")
    if not any(getattr(f, "scalearn_quiet", False) for f in log.filters):
        quiet = logging.Filter()
        quiet.filter = lambda record: "none are activated" not in record.getMessage()
        quiet.scalearn_quiet = True
        log.addFilter(quiet)


# ------------------------------------------------------------------------------------- stage 1
def train_sources(tasks: Sequence[str], preset: Union[str, Preset], seed: int = 0, progress: bool = False,
                  target: Optional[str] = None) -> pd.DataFrame:
    """Train (or take from the cache) one adapter per task; a table with test/validation score, rows, steps, seconds.

    With `target`, every adapter is the one a transfer to `target` loads (sources.stage1_adapter): the other tasks
    from the source zoo (the source budget), `target` itself as its own adapter on the target rows (the target
    budget: the Adapter row of a table), listed last whether or not `tasks` names it. Without `target` every task is
    a zoo source. Hub ids and folders (anything with a "/") are listed as they are: nothing to train.
    """
    from .sources import stage1_adapter, train_source

    names, target_task, preset = list(tasks), None, get_preset(preset)
    if target is not None:
        names = [t for t in names if t != target] + [target]
        target_task = get_task(target)
    rows = []
    for task in names:
        if "/" in task:  # a hub id (e.g. an AdapterHub adapter) or a folder: nothing to train
            rows.append({"task": task, "adapter": task, "cached": True})
            continue
        plan = stage1_adapter(task, target_task, preset, seed, None) if target_task is not None else None
        role, a_seed = (plan.role, plan.seed) if plan is not None else ("source", seed)
        res = train_source(task, preset, seed=a_seed, progress=progress, role=role)
        m = res.metrics
        rows.append({"task": task, "role": "own (target rows)" if role == "target" else "source",
                     "metric": m["metric"], "test": 100 * m["test"].get(m["metric"], float("nan")),
                     "validation": 100 * m["validation"][m["metric"]], "train rows": m["rows"]["train"],
                     "steps": m["steps"], "seconds": round(m["seconds"], 1), "cached": res.cached,
                     "adapter": str(res.path)})
        print(f"{task:<8} {rows[-1]['role']:<17} {'cached ' if res.cached else 'trained'}  "
              f"{m['metric']} test {rows[-1]['test']:.1f} ({rows[-1]['train rows']:,} rows)")
    return pd.DataFrame(rows).set_index("task")


# ------------------------------------------------------------------------------------- stage 2

def run_folder(target: str, sources: Sequence[str], method: str, preset: Union[str, Preset], seed: int = 0,
               k_shot: Optional[int] = None) -> Path:
    """The run folder of the notebooks: transfer's layout (runs.run_dir) under runs/notebooks/<preset>/."""
    from .transfer import run_folder as transfer_run_folder

    preset = get_preset(preset)
    return transfer_run_folder(target, sources, method, preset, seed=seed, k_shot=k_shot,
                               root=runs_root() / preset.name)


def run(target: str, sources: Sequence[str], method: str, preset: Union[str, Preset], seed: int = 0,
        k_shot: Optional[int] = None, progress: bool = False):
    """transfer() into the notebooks' run folder (a finished folder is reused); returns its RunResult."""
    from .transfer import transfer

    out = run_folder(target, sources, method, preset, seed, k_shot)
    return transfer(target, sources, method, preset, seed=seed, k_shot=k_shot, out=out, progress=progress)


def run_many(target: str, sources: Sequence[str], methods: Sequence[str], preset: Union[str, Preset],
             seeds: Sequence[int] = (0,), k_shots: Sequence[Optional[int]] = (None,),
             progress: bool = False, workers: int = 1) -> pd.DataFrame:
    """Every (k, method, seed) run, by the demo's job runner (jobs.run_jobs) into the notebooks' run folders;
    one row per run: method, name, seed, k_shot, test/validation metric, params, path."""
    from .jobs import Job, run_jobs

    preset = get_preset(preset)
    jobs = [Job(target, list(sources), method, seed, k_shot=k) for k in k_shots for method in methods for seed in seeds]
    done = run_jobs(jobs, preset, root=runs_root() / preset.name, progress=progress, workers=workers)
    rows = [result_row(path, read_json(Path(path) / "metrics.json")) for path in done["path"]]
    for row, reused in zip(rows, done["reused"]):
        k, took = row["k_shot"], "reused" if reused else f"{row['seconds']:.0f} s"
        print(f"{'' if k is None else f'k={k:<4} '}{row['name']:<22} seed {row['seed']}: {row['metric']} "
              f"{100 * row['test_metric']:.1f}  ({took})")
    return pd.DataFrame(rows)


def result_row(path, metrics: dict) -> dict:
    """One results-table row from a run's metrics.json."""
    from .methods import METHOD_NAMES

    return {"method": metrics["method"], "name": METHOD_NAMES.get(metrics["method"], metrics["method"]),
            "target": metrics["target"], "seed": metrics["seed"], "k_shot": metrics["k_shot"],
            "metric": metrics["metric"], "test_metric": metrics["test_metric"],
            "validation_metric": metrics["validation_metric"], "transfer_params": metrics["transfer_params"],
            "steps": metrics["steps"], "step_budget": metrics.get("step_budget"), "seconds": metrics["wall_seconds"],
            "path": str(path)}


def summary(results: pd.DataFrame, by: Sequence[str] = ("name",)) -> pd.DataFrame:
    """Mean ± std (over seeds, in %) of the test metric per group, with the transfer parameters."""
    from .report import seed_stats

    by = list(by)
    out = seed_stats(results.assign(score=100 * results["test_metric"]), by, "score")
    out["transfer params"] = results.groupby(by, sort=False)["transfer_params"].first()
    out["test (mean ± std)"] = [f"{m:.1f} ± {s:.1f}" for m, s in zip(out["mean"], out["std"])]
    return out


def best_constant(target: str, preset: Union[str, Preset], data_dir=None) -> Optional[float]:
    """The best constant prediction's test score in % (majority class; None for regression): the floor to read
    a table of test scores against."""
    from .report import constant_scores

    return constant_scores([target], get_preset(preset), data_dir)[get_task(target).name]


# ------------------------------------------------------------ notebook 04: a fusion model in memory
def train_fusion(target: str, sources: Sequence[str], preset: Union[str, Preset], *, seed: int = 0, data_dir=None,
                 max_steps: Optional[int] = None, progress: bool = False):
    """AdapterFusion on `target` kept in memory (for its attention scores, which a run folder does not keep)."""
    from .transfer import fit_transfer

    return fit_transfer(target, sources, "adapterfusion", get_preset(preset), seed=seed, data_dir=data_dir,
                        max_steps=max_steps, progress=progress)
