"""Stage 1's training: one seq_bn (Pfeiffer) bottleneck adapter + task head on a frozen base model, trained or
reused from the cache (store.py), one process at a time per folder.

Saved in AdapterHub's own format (`save_adapter(..., with_head=True, use_safetensors=True)`: adapter.safetensors,
model_head.safetensors, their JSON configs; no pickle), plus scalearn_source.json, history.csv and, written last,
metrics.json (record.stage1_record).
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Union

from .. import data as data_mod
from ..config import Preset, get_preset
from ..data import load_task_data
from ..encoding import encode_splits
from ..files import atomic_dir, check_writable, folder_lock, read_json, write_json, write_text
from ..models import load_base, quiet_activation
from ..record import stage1_record
from ..tasks import Task, get_task
from ..train import FitConfig, evaluate, fit, set_seed
from .loading import check_untrusted
from .refs import ref_kind, source_task
from .store import (SOURCE_META, adapter_dir, cache_key, effective_role, file_record, fit_settings, reusable)


def seq_bn_config(reduction_factor: int = 16):
    """AdapterHub's Pfeiffer bottleneck: after the FFN only, reduction factor 16, ReLU."""
    from adapters import SeqBnConfig

    return SeqBnConfig(reduction_factor=reduction_factor)


def add_task_head(model, task: Task, name: str, num_labels: Optional[int] = None) -> None:
    """Add the adapters flex head that fits the task's problem type."""
    n = num_labels or task.num_labels
    if task.problem == "multiple_choice":
        model.add_multiple_choice_head(name, num_choices=n, overwrite_ok=True)
    elif task.problem == "multi_label":
        model.add_classification_head(name, num_labels=n, multilabel=True, overwrite_ok=True)
    else:
        model.add_classification_head(name, num_labels=n, overwrite_ok=True)


def history_csv(history: List[dict]) -> str:
    keys = list(dict.fromkeys(k for row in history for k in row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys)
    writer.writeheader()
    writer.writerows(history)
    return buf.getvalue()


def fit_source(task: Task, preset: Preset, rows: Dict[str, list], seed: int = 0, k_shot: Optional[int] = None,
               progress: bool = True, role: str = "source"):
    """Train a fresh seq_bn adapter + head on `rows`: (model, tokenizer, FitResult, test metrics). `role` is decided
    (effective_role's answer: train_source decides it)."""
    set_seed(seed)
    net, tokenizer = load_base(preset.model, preset.num_layers, preset.attention)
    net.add_adapter(task.name, config=seq_bn_config())
    add_task_head(net, task, task.name)
    with quiet_activation():
        net.train_adapter(task.name)  # freezes the base model; adapter and head train
    feats = encode_splits(task, rows, tokenizer, preset)
    cfg = FitConfig(batch_size=preset.batch_size, eval_batch_size=preset.eval_batch_size,
                    warmup_ratio=preset.warmup_ratio, seed=seed, progress=progress, desc=f"{role} {task.name}",
                    cpu_precision=preset.cpu_precision, **fit_settings(preset, role, k_shot))
    params = [p for p in net.parameters() if p.requires_grad]
    result = fit(net, task, feats["train"], feats["validation"], tokenizer, cfg, params=params, head=task.name)
    test = evaluate(net, task, feats["test"], tokenizer, task.name, preset.eval_batch_size,
                    cpu_precision=preset.cpu_precision) if feats["test"] else {}
    return net, tokenizer, result, test


@dataclass
class SourceResult:
    path: Path
    metrics: dict
    cached: bool


def train_source(task: Union[str, Task], preset: Union[str, Preset] = "cpu", *, model: Optional[str] = None,
                 data_dir=None, seed: int = 0, k_shot: Optional[int] = None, out=None, force: bool = False,
                 progress: bool = True, role: str = "source") -> SourceResult:
    """Train (or reuse from the cache) the seq_bn adapter + head of one task; returns its folder and metrics.

    `role`: "source" (the zoo's budget: preset.source_*) or "target" (the target's own adapter on the target
    rows: preset.max_train / target_*, or the k-shot protocol) -- the Adapter row of a results table.
    One process trains a folder at a time: another one asking for the same adapter waits, then reuses it.
    """
    task = get_task(task) if isinstance(task, str) else task
    preset = get_preset(preset).with_(model=model)
    check_untrusted(preset.model)  # before anything is written (CVE-2026-4372)
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    role = effective_role(preset, role, k_shot)  # decided here, once: what follows takes it as it is
    final = Path(out) if out is not None else adapter_dir(task, preset, seed, k_shot, role, data_dir=data_dir)
    settings = cache_key(task, preset, seed, k_shot, role, data_dir)
    if not force and reusable(final, settings):
        return SourceResult(final, read_json(final / "metrics.json"), cached=True)
    check_writable(final, "adapter folder")
    with folder_lock(final, "adapter folder"):
        if not force and reusable(final, settings):  # another process trained it while we waited
            return SourceResult(final, read_json(final / "metrics.json"), cached=True)
        return _train_and_save(task, preset, final, settings, data_dir, seed, k_shot, progress, role)


def _train_and_save(task: Task, preset: Preset, final: Path, settings: dict, data_dir, seed: int,
                    k_shot: Optional[int], progress: bool, role: str) -> SourceResult:
    """train_source's work under the folder's lock: fit the adapter, then write its folder atomically."""
    task = data_mod.resolve_labels(task, data_dir)
    rows = load_task_data(task, preset, data_dir, k_shot, seed, as_source=role == "source")
    net, tokenizer, result, test = fit_source(task, preset, rows, seed, k_shot, progress, role)
    metrics = stage1_record(task, preset, result, test, rows, seed=seed, k_shot=k_shot, role=role)
    with atomic_dir(final) as tmp:
        net.save_adapter(str(tmp), task.name, with_head=True, use_safetensors=True)
        write_json(tmp / SOURCE_META, {"settings": settings, "hidden_size": net.config.hidden_size,
                                       "num_layers": net.config.num_hidden_layers, "files": file_record(tmp)})
        write_text(tmp / "history.csv", history_csv(result.history))
        write_json(tmp / "metrics.json", metrics)
    return SourceResult(final, metrics, cached=False)


def resolve_source(ref: str, preset: Preset, *, data_dir=None, seed: int = 0, k_shot: Optional[int] = None,
                   progress: bool = True, role: str = "source") -> str:
    """A source reference → adapter folder or hub id; task names are trained (or taken from the cache)."""
    kind = ref_kind(ref)
    if kind == "folder":
        return str(Path(ref).expanduser())
    if kind == "hub":
        return ref
    task = source_task(ref)
    return str(train_source(task, preset, data_dir=data_dir, seed=seed, k_shot=k_shot, progress=progress,
                            role=role).path)
