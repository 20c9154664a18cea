"""Stage 2: transfer to a target task with ScaLearn (four variants) or a baseline, under one API.

Every method gets the same data, base model, sources and budget, and writes one run folder (runs.py). Stage 1
(the source zoo, the target's own adapter) is the sources package; what each method installs and trains is
methods.py.
"""
from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import torch

from . import data as data_mod
from .config import Preset, get_preset
from .data import load_task_data
from .encoding import encode_splits
from .files import atomic_dir, check_writable, folder_lock, is_finished, write_json
from .methods import (FIXED_ENCODER, HEAD, OMEGA_METHODS, build_method, check_method, omega_snapshot, param_groups,
                      trainable, transfer_parameters)
from .metrics import loss_check
from .models import load_base, reuse_eval_outputs
from .record import FIT_FIELDS, fit_record, transfer_record
from .runs import RunResult, TransferSpec, reuse_run, run_config, run_dir, write_run
from .sources import (Stage1Adapter, add_task_head, check_sources, check_untrusted, order_sources, read_weights,
                      resolve_source, source_names, stage1_adapter, train_source, weights_file)
from .tasks import Task, get_task
from .train import FitConfig, evaluate, fit, schedule_sum, set_seed


@dataclass
class TrainedTransfer:
    """A transfer model trained in memory: the network, its data and scores (what a run folder is written from)."""

    net: torch.nn.Module
    tokenizer: object
    task: Task
    spec: TransferSpec
    rows: Dict[str, list]
    feats: Dict[str, list]
    result: object  # train.FitResult
    test: dict
    params: List[torch.nn.Parameter]
    soup: Optional[dict]
    seconds: float

    def metrics(self) -> dict:
        """The metrics.json mapping of this run."""
        return _metrics(self.task, self.spec, self.net, self.params, self.result, self.test, self.seconds,
                        self.rows, self.soup)


def _prepare(target: str, sources: Sequence[str], method: str, preset: Union[str, Preset], seed: int,
             k_shot: Optional[int], include_target: bool, model: Optional[str]):
    task = get_task(target)
    check_method(method)
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if k_shot is not None and k_shot < 1:
        raise ValueError(f"k_shot must be >= 1 (or None: all rows), got {k_shot}")
    preset = get_preset(preset)
    preset = preset.with_(model=model)
    names_in = [] if method in ("head_only", "finetune") else order_sources(task, sources, include_target)
    check_untrusted(preset.model, names_in)  # CVE-2026-4372: before anything is written or fetched
    spec = TransferSpec(task.name, source_names(names_in), method, preset, seed, k_shot,
                        include_target)
    return spec, names_in


def run_folder(target: str, sources: Sequence[str], method: str = "scalearn", preset: Union[str, Preset] = "cpu", *,
               seed: int = 0, k_shot: Optional[int] = None, include_target: bool = True, model: Optional[str] = None,
               root="runs") -> Path:
    """The folder transfer() with these arguments writes when no `out` is given: the one run-folder layout
    (runs.run_dir) under `root`, which the demo, reproduce and the notebooks only move."""
    spec, names_in = _prepare(target, sources, method, preset, seed, k_shot, include_target, model)
    return run_dir(spec, root, refs=names_in)


def fit_transfer(target: str, sources: Sequence[str], method: str = "scalearn", preset: Union[str, Preset] = "cpu",
                 *, seed: int = 0, k_shot: Optional[int] = None, data_dir=None, include_target: bool = True,
                 model: Optional[str] = None, max_steps: Optional[int] = None,
                 progress: bool = True, report_to=None, logging_dir=None) -> TrainedTransfer:
    """Train one transfer model and keep it in memory (transfer() is this plus the run folder).

    Use it when you need the live network, e.g. AdapterFusion's attention scores, which a run folder
    does not keep. `max_steps` caps the optimiser steps (None: the preset's budget). `report_to`: as transfer().
    """
    spec, names_in = _prepare(target, sources, method, preset, seed, k_shot, include_target, model)
    if method == "adapter":
        raise ValueError("method 'adapter' trains nothing in stage 2 (it is the target's stage-1 adapter); "
                         "use transfer(..., method='adapter') or sources.train_source()")
    tracking = _tracking(spec, report_to, logging_dir)
    task, rows = _target_data(spec, data_dir)
    return _fit(spec, task, rows, names_in, data_dir, max_steps, progress, tracking)


def _tracking(spec: "TransferSpec", report_to, logging_dir) -> dict:
    """FitConfig's tracker fields for a run (checked before any training); the run name mirrors run_dir."""
    from .tracking import check_trackers

    return {"report_to": check_trackers(report_to), "logging_dir": logging_dir,
            "run_name": str(run_dir(spec, root="."))}


def _stage1_refs(names_in: Sequence[str], task: Task, preset: Preset, seed: int, k_shot: Optional[int], data_dir,
                 progress: bool) -> List[str]:
    """Every source as an adapter reference, training stage 1 where needed: other tasks from the source zoo
    (seed 0, the source budget), the target's own adapter on the target rows (the target budget or k-shot)."""
    check_sources(names_in, preset, data_dir)  # every source is checked before any of them trains
    refs = []
    for s in names_in:
        a = stage1_adapter(s, task, preset, seed, k_shot) or Stage1Adapter(s)  # a folder / hub id: as it is
        refs.append(resolve_source(s, preset, data_dir=data_dir, seed=a.seed, k_shot=a.k_shot, role=a.role,
                                   progress=progress))
    return refs


def stage1_plan(target: str, sources: Sequence[str], method: str = "scalearn", preset: Union[str, Preset] = "cpu",
                *, seed: int = 0, k_shot: Optional[int] = None, data_dir=None,
                include_target: bool = True) -> List[Stage1Adapter]:
    """Every stage-1 adapter that transfer() with these arguments trains or takes from the cache (adapter folders
    and hub ids need no training), after checking every source; nothing is trained here."""
    spec, names_in = _prepare(target, sources, method, preset, seed, k_shot, include_target, None)
    if method == "adapter":
        return [Stage1Adapter(spec.target, seed, k_shot, "target")]
    check_sources(names_in, spec.preset, data_dir)
    task = get_task(spec.target)
    plan = (stage1_adapter(s, task, spec.preset, seed, k_shot) for s in names_in)
    return [a for a in plan if a is not None]


def train_stage1(adapters: Sequence[Stage1Adapter], preset: Union[str, Preset] = "cpu", *, data_dir=None,
                 progress: bool = True) -> None:
    """Train (or find in the cache) these stage-1 adapters, so that runs started in parallel afterwards never
    train the same adapter twice."""
    preset = get_preset(preset)
    for a in adapters:
        train_source(a.task, preset, data_dir=data_dir, seed=a.seed, k_shot=a.k_shot, progress=progress, role=a.role)


def _data_identity(target: str, data_dir) -> dict:
    """data.data_identity of a target, or {} where its data cannot be found here."""
    try:
        return data_mod.data_identity(target, data_dir)
    except (FileNotFoundError, ValueError):
        return {}


def _target_data(spec: TransferSpec, data_dir):
    """The target task (label names resolved) and its rows; fails early for a target without training data."""
    task = data_mod.resolve_labels(get_task(spec.target), data_dir)
    rows = load_task_data(task, spec.preset, data_dir, spec.k_shot, spec.seed)
    spec.data = data_mod.data_identity(task, data_dir)  # config.json: which data this run saw
    return task, rows


def stage2_fit_settings(preset: Preset, method: str, k_shot: Optional[int] = None,
                        max_steps: Optional[int] = None) -> dict:
    """lr, epochs, patience, max_steps and select_by of a stage-2 run, as the authors run them.

    Full data: transfer_epochs, checkpoint by preset.transfer_select_by (paper: validation loss), early stopping
    for AdapterFusion / AdapterSoup only (fusion_patience; fine-tuning: target_patience). k-shot: a step budget
    (few_shot_steps) overriding epochs, selection and early stopping on the validation metric.
    `max_steps` (an explicit cap) wins over both.
    """
    lr = {"adapterfusion": preset.fusion_lr, "finetune": preset.finetune_lr,
          "adaptersoup": preset.target_lr}.get(method, preset.transfer_lr)  # the soup's head: the stage-1 rate
    if k_shot:
        out = {"epochs": None, "max_steps": preset.few_shot_steps, "patience": preset.few_shot_patience,
               "select_by": "metric"}
    else:
        patience = {"adapterfusion": preset.fusion_patience, "adaptersoup": preset.fusion_patience,
                    "finetune": preset.target_patience}.get(method, preset.transfer_patience)
        out = {"epochs": preset.transfer_epochs, "max_steps": preset.max_steps, "patience": patience,
               "select_by": preset.transfer_select_by}
    if max_steps is not None:
        out["max_steps"] = max_steps
    return {"lr": lr, **out}


def _fit(spec: TransferSpec, task: Task, rows, names_in: List[str], data_dir, max_steps: Optional[int],
         progress: bool, tracking: Optional[dict] = None) -> TrainedTransfer:
    preset, method, seed, k_shot = spec.preset, spec.method, spec.seed, spec.k_shot
    spec.source_refs = _stage1_refs(names_in, task, preset, seed, k_shot, data_dir, progress)
    set_seed(seed)
    net, tokenizer = load_base(preset.model, preset.num_layers, preset.attention)
    extra, soup = build_method(net, tokenizer, task, spec, rows, data_dir)
    feats = encode_splits(task, rows, tokenizer, preset)
    set_seed(seed)
    add_task_head(net, task, HEAD)
    params = trainable(net, method)
    cfg = FitConfig(batch_size=preset.batch_size, eval_batch_size=preset.eval_batch_size,
                    warmup_ratio=preset.warmup_ratio, seed=seed, progress=progress, desc=f"{method} → {task.name}",
                    cpu_precision=preset.cpu_precision, **stage2_fit_settings(preset, method, k_shot, max_steps),
                    **(tracking or {}))
    start = time.perf_counter()
    # a fixed encoder scores the validation rows once, not every epoch (the same outputs to the last bit)
    with reuse_eval_outputs(net.base_model) if method in FIXED_ENCODER else nullcontext():
        result = fit(net, task, feats["train"], feats["validation"], tokenizer, cfg,
                     params=param_groups(net, params, method, preset), head=HEAD,
                     extra_loss=extra, on_epoch=lambda: omega_snapshot(net))
    test = evaluate(net, task, feats["test"], tokenizer, HEAD, preset.eval_batch_size,
                    cpu_precision=preset.cpu_precision)
    net.eval()
    return TrainedTransfer(net, tokenizer, task, spec, rows, feats, result, test, params, soup,
                           time.perf_counter() - start)


def transfer(target: str, sources: Sequence[str], method: str = "scalearn", preset: Union[str, Preset] = "cpu", *,
             seed: int = 0, k_shot: Optional[int] = None, data_dir=None, out=None, include_target: bool = True,
             model: Optional[str] = None, progress: bool = True, force: bool = False, report_to=None,
             logging_dir=None) -> RunResult:
    """Train one transfer run and write its folder; a finished folder (metrics.json) is reused unless `force`
    (`RunResult.reused`), after checking it holds this very run: settings, data and the sources' weights.

    One process writes a run folder at a time; another one asking for the same folder waits, then reuses it.
    `report_to`: accelerate trackers ("tensorboard", "wandb", ... or GeneralTracker objects) that get the stage-2
    losses, metrics and ω per layer × source while it trains; TensorBoard writes under `logging_dir`
    (default runs/tensorboard)/<model>/<target>/<method>/seed<k>.
    """
    spec, names_in = _prepare(target, sources, method, preset, seed, k_shot, include_target, model)
    tracking = _tracking(spec, report_to, logging_dir)
    spec.data = _data_identity(spec.target, data_dir)  # a finished folder is reused only for the same data
    final = Path(out) if out is not None else run_dir(spec, refs=names_in)
    if not force and is_finished(final):  # folders appear complete or not at all: no lock needed
        return reuse_run(final, spec, names_in, data_dir)
    check_writable(final, "run folder")
    with folder_lock(final, "run folder"):
        if not force and is_finished(final):  # another process finished it while we waited
            return reuse_run(final, spec, names_in, data_dir)
        task, rows = _target_data(spec, data_dir)
        if method == "adapter":
            return _adapter_baseline(task, spec, final, data_dir, progress)
        run = _fit(spec, task, rows, names_in, data_dir, None, progress, tracking)
        metrics = run.metrics()
        metrics.update(loss_check(task, rows, run.result.history, f"{method} → {task.name}"))  # a failed run says so
        write_run(final, spec, run.net, run.result, metrics)
    return RunResult(final, metrics)


def _metrics(task, spec, net, params, result, test, seconds, rows, soup) -> dict:
    extra = {}
    if spec.method in OMEGA_METHODS:  # how far Adam could move ω in this run: lr · Σ(schedule)
        extra["omega_lr"] = spec.preset.omega_rate()
        extra["omega_travel_bound"] = spec.preset.omega_rate() * schedule_sum(result.step_budget,
                                                                               spec.preset.warmup_ratio)
    if soup:
        extra["adaptersoup"] = soup
    return transfer_record(fit_record(task, spec.preset, result, test, rows), target=task.name, method=spec.method,
                           seed=spec.seed, k_shot=spec.k_shot, sources=spec.sources,
                           transfer_params=transfer_parameters(net, spec.method),
                           trainable_params=sum(p.numel() for p in params), train_seconds=result.seconds,
                           wall_seconds=seconds, **extra)


def _adapter_baseline(task: Task, spec: TransferSpec, final: Path, data_dir, progress) -> RunResult:
    """The Adapter row: the target's own stage-1 adapter trained with this seed (and k-shot data)."""
    src = train_source(task, spec.preset, data_dir=data_dir, seed=spec.seed, k_shot=spec.k_shot, progress=progress,
                       role="target")
    m = src.metrics
    net_params = _weights_numel(weights_file(src.path, "adapter"))
    head_params = _weights_numel(weights_file(src.path, "head"))
    metrics = transfer_record({k: m.get(k) for k in FIT_FIELDS}, target=task.name, method="adapter", seed=spec.seed,
                              k_shot=spec.k_shot, sources=[task.name], transfer_params=net_params,
                              trainable_params=net_params + head_params, train_seconds=m["seconds"],
                              wall_seconds=m["seconds"], source_folder=str(src.path))
    with atomic_dir(final) as tmp:
        write_json(tmp / "config.json", run_config(spec))
        (tmp / "history.csv").write_bytes((src.path / "history.csv").read_bytes())
        write_json(tmp / "metrics.json", metrics)
    return RunResult(final, metrics)


def _weights_numel(path: Path) -> int:
    return sum(v.numel() for v in read_weights(path).values())
