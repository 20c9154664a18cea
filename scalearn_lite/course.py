"""What the notebooks share: run mode and setup, run folders and result tables, and the probing
experiments of notebook 02 (frozen source adapters scaled by a fixed ω, only a head trained).

Modes: "fast" (CI=true or SCALEARN_FAST=1: preset tiny, tiny subsets, minutes), "cpu" (a laptop: preset
cpu, the embedded model) and "full" (a GPU, e.g. Colab: preset paper, roberta-base, hub data).
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import pandas as pd
import torch
import torch.nn as nn

from . import data as data_mod
from .config import Preset, ScaLearnConfig, get_preset, preset_from_dict
from .encoding import encode, make_loader
from .hub import hub_adapter_ids, hub_refs
from .metrics import compute_metrics, decide_problem, main_metric
from .models import load_base, model_id
from .tasks import Task, get_task
from .train import loss_fn, set_seed

MODES = ("fast", "cpu", "full")
PRESET_OF_MODE = {"fast": "tiny", "cpu": "cpu", "full": "paper"}
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


def runs_root() -> Path:
    """Where notebook run folders go: $SCALEARN_RUNS_DIR, else <repo>/runs/notebooks (gitignored)."""
    env = os.environ.get("SCALEARN_RUNS_DIR")
    if env:
        return Path(env).expanduser()
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
    "full": "the `paper` preset: roberta-base, full data from the Hugging Face hub, the paper's protocol. "
            "The default on a GPU (e.g. Colab).",
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
    if repo_root() is None and not os.environ.get(data_mod.ENV_CACHE_DIR):
        os.environ[data_mod.ENV_CACHE_DIR] = str(Path.cwd() / "data_cache")  # pip-installed: cache beside the notebook
    set_seed(seed)
    _quiet_adapters_warning()
    device = f"cuda ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else "cpu"
    env = Env(mode, PRESET_OF_MODE[mode], device, data_dir, data_mod.cache_dir(), runs_root(), seed)
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
def train_sources(tasks: Sequence[str], preset: Union[str, Preset], seed: int = 0,
                  progress: bool = False) -> pd.DataFrame:
    """Train (or take from the cache) one adapter per task; a table with test/validation score, steps, seconds.

    Hub ids and folders (anything with a "/") are listed as they are: nothing to train.
    """
    from .sources import train_source

    rows = []
    for task in tasks:
        if "/" in task:  # a hub id (e.g. an AdapterHub adapter) or a folder: nothing to train
            rows.append({"task": task, "adapter": task, "cached": True})
            continue
        res = train_source(task, preset, seed=seed, progress=progress)
        m = res.metrics
        rows.append({"task": task, "metric": m["metric"], "test": 100 * m["test"].get(m["metric"], float("nan")),
                     "validation": 100 * m["validation"][m["metric"]], "train rows": m["rows"]["train"],
                     "steps": m["steps"], "seconds": round(m["seconds"], 1), "cached": res.cached,
                     "adapter": str(res.path)})
        print(f"{task:<8} {'cached ' if res.cached else 'trained'}  {m['metric']} test {rows[-1]['test']:.1f}")
    return pd.DataFrame(rows).set_index("task")


# ------------------------------------------------------------------------------------- stage 2
def _preset(preset: Union[str, Preset]) -> Preset:
    return get_preset(preset) if isinstance(preset, str) else preset


def run_folder(target: str, sources: Sequence[str], method: str, preset: Union[str, Preset], seed: int = 0,
               k_shot: Optional[int] = None) -> Path:
    """runs/notebooks/<preset>/<model>/<target>[-kK]/<sources joined by +>/<method>/seed<k>/"""
    from .transfer import source_label, order_sources

    preset = _preset(preset)
    task = get_task(target)
    if method == "head_only":
        label = "none"
    elif method == "adapter":
        label = "own"
    else:
        label = "+".join(source_label(s) for s in order_sources(task, sources))
    name = task.name if k_shot is None else f"{task.name}-k{k_shot}"
    return runs_root() / preset.name / model_id(preset.model, preset.num_layers) / name / label / method / f"seed{seed}"


def run(target: str, sources: Sequence[str], method: str, preset: Union[str, Preset], seed: int = 0,
        k_shot: Optional[int] = None, progress: bool = False):
    """transfer() into this course's run folder (a finished folder is reused); returns its RunResult."""
    from .transfer import transfer

    out = run_folder(target, sources, method, preset, seed, k_shot)
    return transfer(target, sources, method, preset, seed=seed, k_shot=k_shot, out=out, progress=progress)


def run_many(target: str, sources: Sequence[str], methods: Sequence[str], preset: Union[str, Preset],
             seeds: Sequence[int] = (0,), k_shots: Sequence[Optional[int]] = (None,),
             progress: bool = False) -> pd.DataFrame:
    """Every (k, method, seed) run; one row per run: method, name, seed, k_shot, test/validation metric, params, path."""
    rows = []
    for k in k_shots:
        for method in methods:
            for seed in seeds:
                start = time.perf_counter()
                res = run(target, sources, method, preset, seed, k, progress)
                rows.append(result_row(res.path, res.metrics))
                print(f"{'' if k is None else f'k={k:<4} '}{rows[-1]['name']:<22} seed {seed}: "
                      f"{res.metrics['metric']} {100 * res.metrics['test_metric']:.1f}  "
                      f"({time.perf_counter() - start:.0f} s)")
    return pd.DataFrame(rows)


def result_row(path, metrics: dict) -> dict:
    """One results-table row from a run's metrics.json."""
    from .transfer import METHOD_NAMES

    return {"method": metrics["method"], "name": METHOD_NAMES.get(metrics["method"], metrics["method"]),
            "target": metrics["target"], "seed": metrics["seed"], "k_shot": metrics["k_shot"],
            "metric": metrics["metric"], "test_metric": metrics["test_metric"],
            "validation_metric": metrics["validation_metric"], "transfer_params": metrics["transfer_params"],
            "steps": metrics["steps"], "step_budget": metrics.get("step_budget"), "seconds": metrics["wall_seconds"],
            "path": str(path)}


def summary(results: pd.DataFrame, by: Sequence[str] = ("name",)) -> pd.DataFrame:
    """Mean ± std (over seeds, in %) of the test metric per group, with the transfer parameters."""
    from .experiments import seed_stats

    by = list(by)
    out = seed_stats(results.assign(score=100 * results["test_metric"]), by, "score")
    out["transfer params"] = results.groupby(by, sort=False)["transfer_params"].first()
    out["test (mean ± std)"] = [f"{m:.1f} ± {s:.1f}" for m, s in zip(out["mean"], out["std"])]
    return out


def best_constant(target: str, preset: Union[str, Preset], data_dir=None) -> Optional[float]:
    """The best constant prediction's test score in % (majority class; None for regression): the floor to read
    a table of test scores against."""
    from .experiments import constant_scores

    return constant_scores([target], _preset(preset), data_dir)[get_task(target).name]


# ---------------------------------------------------------------------- notebook 02: probing
def _probe_head(hidden_size: int, num_labels: int, dropout: float = 0.1) -> nn.Sequential:
    """The adapters classification head's shape: dropout, dense, tanh, dropout, out (on the first token)."""
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden_size, hidden_size), nn.Tanh(), nn.Dropout(dropout),
                         nn.Linear(hidden_size, num_labels))


class ProbeBench:
    """A frozen encoder with S frozen source adapters at a *fixed* ω (never trained) and a target's data.

    `score(omega)` trains only a fresh head on the first-token output and returns validation/test metrics.
    The encoder is frozen, so its features are computed once per ω (eval mode) and the head trains on them.
    """

    def __init__(self, target: str, sources: Sequence[str], preset: Union[str, Preset], *, seed: int = 0,
                 data_dir=None, max_train: Optional[int] = None, include_target: bool = True,
                 progress: bool = False):
        from .sources import encode_splits, load_task_data, resolve_source
        from .transfer import source_label, build_scalearn, order_sources

        self.preset = _preset(preset).with_(max_train=max_train)
        base = _preset(preset)  # sources come from the cache of the unmodified preset
        self.task = data_mod.resolve_labels(get_task(target), data_dir)
        if self.task.problem not in ("classification", "regression"):
            raise ValueError(f"probing supports classification and regression targets, not {self.task.problem}")
        names = order_sources(self.task, sources, include_target)
        refs = [resolve_source(s, base, data_dir=data_dir, seed=0, progress=progress) for s in names]
        self.sources = [source_label(s) for s in names]
        rows = load_task_data(self.task, self.preset, data_dir, seed=seed)
        set_seed(seed)
        self.net, self.tokenizer = load_base(base.model, base.num_layers, base.attention)
        cfg = ScaLearnConfig(omega_shape="scalar", omega_dropout=0.0, init_std=0.0)
        self.scalearn = build_scalearn(self.net, self.sources, refs, cfg)
        self.scalearn.set_omega(torch.tensor(0.0), trainable=False)
        self.net.eval()
        self.feats = encode_splits(self.task, rows, self.tokenizer, self.preset)
        self.seed, self._cache = seed, {}

    @torch.no_grad()
    def features(self, omega: Sequence[float]) -> Dict[str, Tuple[torch.Tensor, torch.Tensor]]:
        """{split: (X (N, d) first-token outputs, y (N,))} with ω_i = omega[i] in every layer (cached per ω)."""
        key = tuple(round(float(w), 6) for w in omega)
        if len(key) != len(self.sources):
            raise ValueError(f"need one ω per source {self.sources}, got {list(omega)}")
        if key not in self._cache:
            self.scalearn.set_omega(torch.tensor(key).view(-1, 1))  # (S, 1) → every layer and unit
            self._cache[key] = {split: self._encode(f) for split, f in self.feats.items() if f}
        return self._cache[key]

    def _encode(self, feats: List[dict]):
        xs, ys = [], []
        for batch in make_loader(feats, self.task, self.tokenizer, self.preset.eval_batch_size):
            ys.append(batch.pop("labels"))
            xs.append(self.net.base_model(**batch).last_hidden_state[:, 0])  # (B, d)
        return torch.cat(xs), torch.cat(ys)

    def score(self, omega: Sequence[float], epochs: int = 10, lr: float = 1e-3, batch_size: int = 32) -> dict:
        """Train a fresh head on the features at this ω; best epoch on validation → {validation, test} main metric."""
        data = self.features(omega)
        head = train_head(self.task, *data["train"], *data["validation"], epochs=epochs, lr=lr,
                          batch_size=batch_size, seed=self.seed)
        return {"validation": head_metric(self.task, head, *data["validation"]),
                "test": head_metric(self.task, head, *data["test"]) if "test" in data else float("nan")}


def head_metric(task: Task, head: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """The task's main metric of `head` on features x (N, d) with labels y (N,)."""
    head.eval()
    with torch.no_grad():
        logits = head(x).numpy()  # (N, C)
    return compute_metrics(task, decide_problem(task.problem, logits), y.tolist())[main_metric(task)]


def train_head(task: Task, x: torch.Tensor, y: torch.Tensor, x_val: torch.Tensor, y_val: torch.Tensor, *,
               epochs: int = 10, lr: float = 1e-3, batch_size: int = 32, seed: int = 0) -> nn.Module:
    """AdamW on a fresh head over fixed features x (N, d); returns the head of the best validation epoch."""
    torch.manual_seed(seed)
    head = _probe_head(x.shape[1], task.num_labels)
    opt = torch.optim.AdamW(head.parameters(), lr=lr)
    best, best_state = -math.inf, None
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # ops this small only lose time to thread hand-offs (8 s vs 0.25 s on a busy CPU)
    try:
        for _ in range(epochs):
            head.train()
            for idx in torch.randperm(len(x)).split(batch_size):
                loss = loss_fn(task.problem, head(x[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
            score = head_metric(task, head, x_val, y_val)
            if score > best:
                best, best_state = score, {k: v.clone() for k, v in head.state_dict().items()}
    finally:
        torch.set_num_threads(threads)
    head.load_state_dict(best_state)
    return head.eval()


def sweep_one(bench: ProbeBench, values: Iterable[float], sources: Optional[Sequence[str]] = None,
              **kw) -> pd.DataFrame:
    """Scale ONE source adapter by each ω in `values` (the others at 0): rows source, omega, validation, test."""
    rows = []
    for name in sources or bench.sources:
        i = bench.sources.index(name)
        for w in values:
            omega = [0.0] * len(bench.sources)
            omega[i] = float(w)
            rows.append({"source": name, "omega": float(w), **bench.score(omega, **kw)})
    return pd.DataFrame(rows)


def sweep_two(bench: ProbeBench, pair: Tuple[str, str], values: Iterable[float], values_2=None,
              **kw) -> pd.DataFrame:
    """The 2-D grid: ω_1 on pair[0], ω_2 on pair[1] (others 0): rows omega_1, omega_2, validation, test."""
    i, j = bench.sources.index(pair[0]), bench.sources.index(pair[1])
    values = [float(v) for v in values]
    rows = []
    for w1 in values:
        for w2 in (values if values_2 is None else values_2):
            omega = [0.0] * len(bench.sources)
            omega[i], omega[j] = w1, float(w2)
            rows.append({"omega_1": w1, "omega_2": float(w2), **bench.score(omega, **kw)})
    df = pd.DataFrame(rows)
    df.attrs["pair"] = tuple(pair)
    return df


# --------------------------------------------------------------- notebook 04: models in memory
class OmegaScorer:
    """A saved ω run, reloaded: `scorer([ω_1..ω_S])` sets ω_i in every layer and unit and returns the metric.

    `scorer(None)` restores and scores the learned ω. Used by the ω sliders of notebook 04.
    """

    def __init__(self, folder, split: str = "validation", max_rows: Optional[int] = None, data_dir=None):
        from .sources import load_task_data
        from .transfer import load_run

        self.net, self.tokenizer, task, cfg = load_run(folder)
        preset = preset_from_dict(cfg["preset"])
        self.task = data_mod.resolve_labels(task, data_dir)
        rows = load_task_data(self.task, preset, data_dir, k_shot=cfg["k_shot"], seed=cfg["seed"])[split]
        self.feats = encode(self.task, rows[:max_rows] if max_rows else rows, self.tokenizer, preset.length_for(self.task.name))
        self.sources = list(self.net.scalearn.sources)
        self.learned = self.net.scalearn.omega.omega.detach().clone()  # (L|1, S, d|1)
        self.metric = main_metric(self.task)

    def learned_per_source(self) -> List[float]:
        """The learned ω averaged over layers and units, one value per source."""
        return self.learned.mean(dim=(0, 2)).tolist()

    def __call__(self, omega: Optional[Sequence[float]] = None) -> float:
        from .train import evaluate
        from .transfer import HEAD

        sl = self.net.scalearn
        sl.set_omega(self.learned if omega is None else torch.tensor([float(w) for w in omega]).view(-1, 1))
        try:
            return evaluate(self.net, self.task, self.feats, self.tokenizer, HEAD)[self.metric]
        finally:
            sl.set_omega(self.learned)

    def table(self) -> pd.DataFrame:
        """The metric under hand-made ω settings: learned, uniform 1/S, zero, and each source alone (one-hot)."""
        S = len(self.sources)
        settings = {"learned ω": None, "uniform 1/S": [1.0 / S] * S, "zero (head only)": [0.0] * S}
        settings.update({f"only {s} (one-hot)": [float(i == k) for i in range(S)] for k, s in enumerate(self.sources)})
        rows = [{"ω setting": name, self.metric: 100 * self(w)} for name, w in settings.items()]
        return pd.DataFrame(rows).set_index("ω setting")


def train_fusion(target: str, sources: Sequence[str], preset: Union[str, Preset], *, seed: int = 0, data_dir=None,
                 max_steps: Optional[int] = None, progress: bool = False):
    """AdapterFusion on `target` kept in memory (for its attention scores, which a run folder does not keep)."""
    from .transfer import fit_transfer

    return fit_transfer(target, sources, "adapterfusion", _preset(preset), seed=seed, data_dir=data_dir,
                        max_steps=max_steps, progress=progress)


def batches(run_, split: str = "validation", batch_size: int = 32, max_rows: Optional[int] = None):
    """A DataLoader over an in-memory run's encoded split (for fusion_attention_frame)."""
    feats = run_.feats[split][:max_rows] if max_rows else run_.feats[split]
    return make_loader(feats, run_.task, run_.tokenizer, batch_size)

