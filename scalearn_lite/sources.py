"""Stage 1: one seq_bn (Pfeiffer) bottleneck adapter + task head per source task, trained, cached, loaded.

Saved in AdapterHub's own format (`save_adapter(..., with_head=True)`) under
`data_cache/adapters/<model-id>/<task>/seed<k>/`, plus `scalearn_source.json` (settings, base model),
`history.csv` and, written last, `metrics.json`. A folder without `metrics.json` is incomplete.
"""
from __future__ import annotations

import csv
import io as _io
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Union

import torch

from . import data as data_mod
from .config import Preset, get_preset
from .encoding import encode
from .metrics import main_metric
from .io import atomic_dir, read_json, write_json, write_text
from .models import encoder_layers, load_base, model_id, quiet_activation
from .scaling import AdapterWeights
from .tasks import Task, get_task
from .train import FitConfig, evaluate, fit, precision_used, set_seed

SOURCE_META = "scalearn_source.json"
# What a seq_bn adapter must look like for the formula of the batched bank to hold.
_REQUIRED = {"original_ln_before": True, "original_ln_after": True, "residual_before_ln": True,
             "adapter_residual_before_ln": False, "ln_before": False, "ln_after": False, "mh_adapter": False,
             "output_adapter": True, "non_linearity": "relu", "use_gating": False, "phm_layer": False}


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


# ----------------------------------------------------------------------------------------- data
def _limit(rows: list, n: Optional[int], seed: int = 0) -> list:
    if n is None or len(rows) <= n:
        return list(rows)
    keep = sorted(random.Random(seed).sample(range(len(rows)), n))
    return [rows[i] for i in keep]


def load_task_data(task: Task, preset: Preset, data_dir=None, k_shot: Optional[int] = None,
                   seed: int = 0, as_source: bool = False) -> Dict[str, list]:
    """Processed rows per split after the paper's protocol and the preset's subsampling.

    `as_source`: stage 1 (the preset's max_train); a task with only a dev file here (QNLI, BoolQ offline)
    is then split 90/10 from it and has no test. Stage 1 and 2 see the same rows of a task: the Adapter
    baseline (the target's stage-1 adapter) and the transfer methods share one budget.
    """
    dev_only = as_source and not data_mod.has_train(task, data_dir)
    splits = data_mod.load_splits(task.name, data_dir=data_dir, k_shot=k_shot, k_shot_seed=seed,
                                  max_train=None if k_shot else preset.max_train, dev_as_train=dev_only)
    return {"train": splits["train"].to_list(),
            "validation": _limit(splits["validation"].to_list(), preset.max_validation),
            "test": _limit(splits["test"].to_list(), preset.max_test)}


def encode_splits(task: Task, rows: Dict[str, list], tokenizer, preset: Preset) -> Dict[str, list]:
    """Token features per split."""
    return {k: encode(task, v, tokenizer, preset.max_length) for k, v in rows.items()}


# ---------------------------------------------------------------------------------------- paths
def source_dir(task: Union[str, Task], preset: Preset, seed: int = 0, k_shot: Optional[int] = None,
               root=None) -> Path:
    """data_cache/adapters/<model-id>/<task>[-k<K>]/seed<k>/"""
    task = get_task(task) if isinstance(task, str) else task
    root = Path(root) if root is not None else data_mod.cache_dir() / "adapters"
    name = task.name if k_shot is None else f"{task.name}-k{k_shot}"
    return root / model_id(preset.model, preset.num_layers) / name / f"seed{seed}"


def is_complete(folder: Path) -> bool:
    """A source folder is complete once its metrics.json exists (it is written last)."""
    return (Path(folder) / "metrics.json").is_file()


# The preset fields that change a stage-1 adapter: the cache key (stage-2 fields do not retrain sources).
_STAGE1_FIELDS = ("model", "num_layers", "max_length", "batch_size", "max_train", "max_validation", "max_test",
                  "source_lr", "source_epochs", "patience", "warmup_ratio", "max_steps", "cpu_precision")


def _settings(task: Task, preset: Preset, seed: int, k_shot: Optional[int]) -> dict:
    fields = asdict(preset)
    return {"task": task.name, "base": model_id(preset.model, preset.num_layers), "seed": seed,
            "k_shot": k_shot, "preset": {k: fields[k] for k in _STAGE1_FIELDS}}


def _history_csv(history: List[dict]) -> str:
    keys = list(dict.fromkeys(k for row in history for k in row))
    buf = _io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys)
    writer.writeheader()
    writer.writerows(history)
    return buf.getvalue()


# ------------------------------------------------------------------------------------- training
def fit_source(task: Task, preset: Preset, rows: Dict[str, list], seed: int = 0, k_shot: Optional[int] = None,
               progress: bool = True):
    """Train a fresh seq_bn adapter + head on `rows`: (model, tokenizer, FitResult, test metrics)."""
    set_seed(seed)
    net, tokenizer = load_base(preset.model, preset.num_layers)
    net.add_adapter(task.name, config=seq_bn_config())
    add_task_head(net, task, task.name)
    with quiet_activation():
        net.train_adapter(task.name)  # freezes the base model; adapter and head train
    feats = encode_splits(task, rows, tokenizer, preset)
    cfg = FitConfig(lr=preset.source_lr, epochs=preset.source_epochs, batch_size=preset.batch_size,
                    eval_batch_size=preset.eval_batch_size, patience=preset.patience, select_by="loss",
                    warmup_ratio=preset.warmup_ratio, max_steps=1000 if k_shot else preset.max_steps,
                    seed=seed, progress=progress, desc=f"source {task.name}", cpu_precision=preset.cpu_precision)
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
                 progress: bool = True) -> SourceResult:
    """Train (or reuse from the cache) the seq_bn adapter + head of one task; returns its folder and metrics."""
    task = get_task(task) if isinstance(task, str) else task
    preset = get_preset(preset) if isinstance(preset, str) else preset
    preset = preset.with_(model=model)
    final = Path(out) if out is not None else source_dir(task, preset, seed, k_shot)
    settings = _settings(task, preset, seed, k_shot)
    if not force and is_complete(final) and (final / SOURCE_META).is_file():
        if read_json(final / SOURCE_META).get("settings") == settings:
            return SourceResult(final, read_json(final / "metrics.json"), cached=True)
    task = data_mod.resolve_labels(task, data_dir)
    rows = load_task_data(task, preset, data_dir, k_shot, seed, as_source=True)
    net, tokenizer, result, test = fit_source(task, preset, rows, seed, k_shot, progress)
    metrics = {"task": task.name, "base": settings["base"], "seed": seed, "k_shot": k_shot,
               "metric": main_metric(task), "test": test, "validation": result.best_validation,
               "best_epoch": result.best_epoch, "steps": result.steps, "seconds": result.seconds,
               "rows": {k: len(v) for k, v in rows.items()}, "precision": precision_used(preset.cpu_precision)}
    with atomic_dir(final) as tmp:
        net.save_adapter(str(tmp), task.name, with_head=True)
        write_json(tmp / SOURCE_META, {"settings": settings, "hidden_size": net.config.hidden_size,
                                       "num_layers": net.config.num_hidden_layers})
        write_text(tmp / "history.csv", _history_csv(result.history))
        write_json(tmp / "metrics.json", metrics)
    return SourceResult(final, metrics, cached=False)


# -------------------------------------------------------------------------------------- loading
def _is_hub_id(ref: str) -> bool:
    return "/" in ref and not Path(ref).exists() and len(ref.split("/")) == 2 and not ref.startswith((".", "/"))


def check_adapter_folder(folder: Path, model, name: str) -> None:
    """Raise a clear error if `folder` is not a complete seq_bn adapter for `model`'s base."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"source {name!r}: adapter folder {folder} does not exist")
    cfg_path = folder / "adapter_config.json"
    weights = [folder / "pytorch_adapter.bin", folder / "adapter_model.safetensors"]
    if not cfg_path.is_file() or not any(w.is_file() for w in weights):
        raise ValueError(f"source {name!r}: {folder} is not a complete adapter folder (needs adapter_config.json "
                         "and pytorch_adapter.bin); it may be corrupt or half-written: delete it and retrain")
    meta = read_json(cfg_path)
    if meta.get("hidden_size") not in (None, model.config.hidden_size):
        raise ValueError(f"source {name!r} has hidden size {meta['hidden_size']} but the base model has "
                         f"{model.config.hidden_size}: it was trained on another base model")
    if meta.get("model_type") and meta["model_type"] != model.config.model_type:
        raise ValueError(f"source {name!r} was trained on a {meta['model_type']} model, the base model is "
                         f"{model.config.model_type}")
    base = getattr(model, "scalearn_base", None)
    if (folder / SOURCE_META).is_file() and base is not None:
        trained_on = read_json(folder / SOURCE_META)["settings"]["base"]
        if trained_on != base:
            raise ValueError(f"source {name!r} was trained on base model {trained_on!r} but the target uses "
                             f"{base!r}; train the sources on the same base model")
    config = meta.get("config", {})
    for key, want in _REQUIRED.items():
        if key in config and config[key] != want:
            raise ValueError(f"source {name!r} is not a seq_bn (Pfeiffer) adapter: {key}={config[key]!r}, "
                             f"ScaLearn needs {want!r}")


def load_adapter_into(model, ref: Union[str, Path], name: str) -> None:
    """Load an adapter folder or hub id into `model` as adapter `name` (no head), with checks."""
    ref = str(ref)
    if _is_hub_id(ref):
        model.load_adapter(ref, load_as=name, with_head=False)
        return
    check_adapter_folder(Path(ref), model, name)
    try:
        model.load_adapter(ref, load_as=name, with_head=False)
    except Exception as err:  # adapters' own errors about shapes or files are cryptic
        raise ValueError(f"source {name!r}: could not load the adapter in {ref} ({err}); the folder may be "
                         "corrupt or from another base model") from None
    missing = [l for l, layer in enumerate(encoder_layers(model)) if name not in layer.output.adapters]
    if missing:
        raise ValueError(f"source {name!r} has no adapter in layers {missing}: it was trained on a base model "
                         f"with another layer count")


def extract_weights(model, name: str) -> List[AdapterWeights]:
    """Per-layer weights of a loaded seq_bn adapter, its constant scaling folded into the up-projection."""
    out = []
    for layer in encoder_layers(model):
        a = layer.output.adapters[name]
        if not isinstance(a.scaling, float):
            raise ValueError(f"source {name!r} has a learned scaling; ScaLearn needs a constant-scaling seq_bn adapter")
        down, up = a.adapter_down[0], a.adapter_up
        out.append(AdapterWeights(down.weight.detach().clone(), down.bias.detach().clone(),
                                  up.weight.detach() * a.scaling, up.bias.detach() * a.scaling))
    return out


def source_weights(model, ref: Union[str, Path], name: str) -> List[AdapterWeights]:
    """Load, copy out and remove one source adapter: its per-layer weights for the ScaLearn bank."""
    load_adapter_into(model, ref, name)
    try:
        return extract_weights(model, name)
    finally:
        model.delete_adapter(name)


def resolve_source(ref: str, preset: Preset, *, data_dir=None, seed: int = 0, k_shot: Optional[int] = None,
                   progress: bool = True) -> str:
    """A source reference → adapter folder or hub id; task names are trained (or taken from the cache)."""
    if Path(ref).is_dir() or _is_hub_id(ref):
        return ref
    try:
        task = get_task(ref)
    except ValueError:
        raise ValueError(f"source {ref!r} is neither a task name, an adapter folder nor a hub id "
                         "(like AdapterHub/roberta-base-rte_pfeiffer)") from None
    return str(train_source(task, preset, data_dir=data_dir, seed=seed, k_shot=k_shot, progress=progress).path)
