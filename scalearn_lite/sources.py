"""Stage 1: one seq_bn (Pfeiffer) bottleneck adapter + task head per source task, trained, cached, loaded.

Saved in AdapterHub's own format (`save_adapter(..., with_head=True, use_safetensors=True)`: adapter.safetensors,
model_head.safetensors, their JSON configs; no pickle) under `data_cache/adapters/<model-id>/<task>/seed<k>/`, plus
`scalearn_source.json` (settings with the data's identity incl. a hub revision, base model, sha256 of each
adapter/head file), `history.csv` and, written last, `metrics.json`. A folder without `metrics.json` is
incomplete; one whose files no longer match their sha256 is corrupt. Older folders with pytorch_*.bin weights
still load.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import re
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import torch

from . import data as data_mod
from . import hub
from .config import Preset, get_preset
from .encoding import encode
from .metrics import loss_check, main_metric
from .files import atomic_dir, check_writable, folder_lock, is_finished, read_json, write_json, write_text
from .models import (attention_used, check_model, encoder_layers, load_base, load_config,
                     model_id, quiet_activation)
from .scaling import AdapterWeights
from .tasks import Task, get_task
from .device import precision_used
from .train import FitConfig, evaluate, fit, set_seed

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
ROLES = ("source", "target")


def _limit(rows: list, n: Optional[int], seed: int = 0) -> list:
    if n is None or len(rows) <= n:
        return list(rows)
    keep = sorted(random.Random(seed).sample(range(len(rows)), n))
    return [rows[i] for i in keep]


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    return role


def load_task_data(task: Task, preset: Preset, data_dir=None, k_shot: Optional[int] = None,
                   seed: int = 0, as_source: bool = False) -> Dict[str, list]:
    """Processed rows per split after the paper's protocol and the preset's budget.

    `as_source`: a source task of stage 1 (the zoo): preset.source_max_train rows; a task with only a dev file
    here (QNLI, BoolQ offline) is then split 90/10 from it and has no test. Otherwise the target: preset.max_train
    rows, which its own stage-1 adapter (the Adapter row) and every stage-2 method share; with `k_shot`, the
    first k rows of the seed-42 shuffled train split (the same for every seed) and validation rows from the
    held-out split (preset.few_shot_max_validation). `seed` does not change the rows (the protocol's splits are
    seeded with 42); it is kept for callers.
    """
    dev_only = as_source and not data_mod.has_train(task, data_dir)
    max_train = preset.source_max_train if as_source else preset.max_train
    splits = data_mod.load_splits(task.name, data_dir=data_dir, k_shot=None if as_source else k_shot,
                                  max_train=max_train, dev_as_train=dev_only)
    max_val = preset.few_shot_max_validation if (k_shot and not as_source) else preset.max_validation
    return {"train": splits["train"].to_list(),
            "validation": _limit(splits["validation"].to_list(), max_val),
            "test": _limit(splits["test"].to_list(), preset.max_test)}


def encode_splits(task: Task, rows: Dict[str, list], tokenizer, preset: Preset) -> Dict[str, list]:
    """Token features per split (the preset's max length for this task: MultiRC 324 in the paper preset)."""
    return {k: encode(task, v, tokenizer, preset.length_for(task.name)) for k, v in rows.items()}


# ---------------------------------------------------------------------------------------- paths
def _shares_source_budget(preset: Preset) -> bool:
    """True when the target's own adapter gets exactly the source budget (paper preset): then it *is* the
    source adapter of that task, and both roles share one cache folder."""
    return (preset.max_train, preset.target_lr, preset.target_epochs, preset.target_patience) == (
        preset.source_max_train, preset.source_lr, preset.source_epochs, preset.source_patience)


def effective_role(preset: Preset, role: str, k_shot: Optional[int]) -> str:
    """"source" or "target": which budget a stage-1 adapter is trained with (k-shot is always a target's)."""
    _check_role(role)
    if role == "source" and k_shot:
        raise ValueError("a source adapter is trained on full data; k-shot applies to the target's own adapter only")
    if role == "target" and not k_shot and _shares_source_budget(preset):
        return "source"
    return role


def source_dir(task: Union[str, Task], preset: Preset, seed: int = 0, k_shot: Optional[int] = None,
               root=None, role: str = "source", data_dir=None) -> Path:
    """data_cache/adapters/<model-id>/<task>[-target-<budget> | -k<K>-<budget>][-d<data>]/seed<k>/.

    A target's own adapter depends on the target budget, so two presets that differ there (cpu and demo: 6 and 3
    epochs) get two folders instead of retraining each other's adapter in turn; <budget> is 8 hex digits of the
    budget fields. <data> is 8 hex digits of the data's identity (data.data_identity of `data_dir`: each local
    file's sha256, or the hub revision), so that an adapter trained on other files gets its own folder instead of
    overwriting this one (none where the task's data cannot be found here). The cache key in scalearn_source.json
    holds everything."""
    task = get_task(task) if isinstance(task, str) else task
    root = Path(root) if root is not None else data_mod.cache_dir() / "adapters"
    role = effective_role(preset, role, k_shot)
    name = task.name
    if role != "source":
        budget = json.dumps(_budget_fields(preset, role, k_shot), sort_keys=True)
        digest = hashlib.sha256(budget.encode()).hexdigest()[:8]
        name = f"{task.name}-k{k_shot}-{digest}" if k_shot else f"{task.name}-target-{digest}"
    data = data_key(task, data_dir)
    name = f"{name}-d{data}" if data else name
    return root / model_id(preset.model, preset.num_layers) / name / f"seed{seed}"


def data_key(task: Task, data_dir=None) -> Optional[str]:
    """8 hex digits of a task's data identity (data.data_identity), or None where its data cannot be found."""
    try:
        identity = data_mod.data_identity(task, data_dir)
    except (FileNotFoundError, ValueError, OSError):
        return None
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:8]


# ------------------------------------------------------------------------ integrity, fingerprints
# adapters' weight file names: safetensors (what we write) first, then the pickle-based .bin of older folders.
WEIGHT_FILES = {"adapter": ("adapter.safetensors", "pytorch_adapter.bin"),
                "head": ("model_head.safetensors", "pytorch_model_head.bin"),
                "fusion": ("model_adapter_fusion.safetensors", "pytorch_model_adapter_fusion.bin")}
_RECORDED = ("adapter_config.json", *WEIGHT_FILES["adapter"], "head_config.json", *WEIGHT_FILES["head"])


def weights_file(folder: Path, kind: str = "adapter") -> Optional[Path]:
    """The adapter / head / fusion weights file in an adapters folder (safetensors preferred), or None."""
    return next((Path(folder) / n for n in WEIGHT_FILES[kind] if (Path(folder) / n).is_file()), None)


def read_weights(path: Path) -> Dict[str, torch.Tensor]:
    """A state dict from a .safetensors file, or (older folders) a .bin read with torch.load(weights_only=True)."""
    if Path(path).suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    return torch.load(path, map_location="cpu", weights_only=True)


def _sha256(path: Path) -> str:
    st = path.stat()
    return data_mod.file_sha256(str(path), st.st_size, st.st_mtime_ns)


def _file_record(folder: Path) -> Dict[str, dict]:
    """{file: {bytes, mtime_ns, sha256}} of the adapter and head files in `folder` (stored in SOURCE_META)."""
    out = {}
    for name in _RECORDED:
        path = folder / name
        if path.is_file():
            st = path.stat()
            out[name] = {"bytes": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": _sha256(path)}
    return out


def _meta(folder: Path) -> dict:
    """SOURCE_META of a folder, or {} if it has none or it is unreadable."""
    try:
        return read_json(Path(folder) / SOURCE_META) if (Path(folder) / SOURCE_META).is_file() else {}
    except (OSError, ValueError):
        return {}


def corruption(folder: Path) -> Optional[str]:
    """Why a folder's files differ from what SOURCE_META recorded when it was saved, or None if they match."""
    for name, rec in _meta(folder).get("files", {}).items():
        path = Path(folder) / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != rec["bytes"] or _sha256(path) != rec["sha256"]:
            return f"{name} does not match the sha256 recorded when it was saved"
    return None


def _reusable(folder: Path, settings: dict) -> bool:
    """A complete cached adapter with these settings whose files are intact (a corrupt one: warn, retrain)."""
    if not is_finished(folder) or _meta(folder).get("settings") != settings:
        return False
    problem = corruption(folder)
    try:
        read_json(folder / "metrics.json")
    except (OSError, ValueError) as err:
        problem = problem or f"metrics.json is unreadable ({err})"
    if problem:
        warnings.warn(f"cached adapter {folder} is corrupt ({problem}); retraining it")
        return False
    return True


def _weights_file(folder: Path) -> Path:
    path = weights_file(folder, "adapter")
    if path is None:
        raise FileNotFoundError(f"{folder} has no adapter weights ({' or '.join(WEIGHT_FILES['adapter'])})")
    return path


def weights_fingerprint(folder) -> str:
    """sha256 of an adapter folder's weights file; read from SOURCE_META while the file's size and mtime match."""
    path = _weights_file(Path(folder))
    st, rec = path.stat(), _meta(folder).get("files", {}).get(path.name)
    if rec and rec["bytes"] == st.st_size and rec["mtime_ns"] == st.st_mtime_ns:
        return rec["sha256"]
    return _sha256(path)


def source_fingerprint(ref: str) -> str:
    """The identity of a source's weights: the weights' sha256 for a folder, "hub:<id>" for a hub id."""
    return weights_fingerprint(ref) if Path(ref).is_dir() else f"hub:{ref}"


def adapter_folder_name(folder) -> Optional[str]:
    """What an adapter folder holds: its task (+ -k<K>) from SOURCE_META, else the adapter's own saved name."""
    settings = _meta(folder).get("settings", {})
    if settings.get("task"):
        k = settings.get("k_shot")
        return settings["task"] if k is None else f"{settings['task']}-k{k}"
    try:
        return read_json(Path(folder) / "adapter_config.json").get("name") or None
    except (OSError, ValueError):
        return None


# The preset fields that change a stage-1 adapter: the cache key (stage-2 fields do not retrain sources).
_STAGE1_FIELDS = ("model", "num_layers", "batch_size", "max_validation", "max_test", "warmup_ratio", "max_steps",
                  "cpu_precision", "attention")
_ROLE_FIELDS = {"source": ("source_max_train", "source_lr", "source_epochs", "source_patience"),
                "target": ("max_train", "target_lr", "target_epochs", "target_patience"),
                "few_shot": ("target_lr", "few_shot_steps", "few_shot_patience", "few_shot_max_validation")}


def stage1_fit_settings(preset: Preset, role: str, k_shot: Optional[int]) -> dict:
    """lr, epochs, patience, max_steps and select_by of a stage-1 run: the source budget, the target budget, or the
    few-shot protocol (a step budget overriding epochs, early stopping on the metric)."""
    role = effective_role(preset, role, k_shot)
    if k_shot:
        return {"lr": preset.target_lr, "epochs": None, "patience": preset.few_shot_patience,
                "max_steps": preset.few_shot_steps, "select_by": "metric"}
    if role == "source":
        return {"lr": preset.source_lr, "epochs": preset.source_epochs, "patience": preset.source_patience,
                "max_steps": preset.max_steps, "select_by": "loss"}
    return {"lr": preset.target_lr, "epochs": preset.target_epochs, "patience": preset.target_patience,
            "max_steps": preset.max_steps, "select_by": "loss"}


def _budget_fields(preset: Preset, role: str, k_shot: Optional[int]) -> dict:
    """The preset fields a stage-1 adapter of this (effective) role is trained with: its cache key's budget part."""
    fields = asdict(preset)
    return {k: fields[k] for k in _STAGE1_FIELDS + _ROLE_FIELDS["few_shot" if k_shot else role]}


def _settings(task: Task, preset: Preset, seed: int, k_shot: Optional[int], role: str = "source",
              data_dir=None) -> dict:
    """The cache key of a stage-1 adapter: task, base, seed, role, budget fields and the data's identity."""
    role = effective_role(preset, role, k_shot)
    return {"task": task.name, "base": model_id(preset.model, preset.num_layers), "seed": seed, "k_shot": k_shot,
            "role": role, "max_length": preset.length_for(task.name), "preset": _budget_fields(preset, role, k_shot),
            "data": data_mod.data_identity(task, data_dir)}


def history_csv(history: List[dict]) -> str:
    keys = list(dict.fromkeys(k for row in history for k in row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys)
    writer.writeheader()
    writer.writerows(history)
    return buf.getvalue()


# ------------------------------------------------------------------------------------- training
def fit_source(task: Task, preset: Preset, rows: Dict[str, list], seed: int = 0, k_shot: Optional[int] = None,
               progress: bool = True, role: str = "source"):
    """Train a fresh seq_bn adapter + head on `rows`: (model, tokenizer, FitResult, test metrics)."""
    set_seed(seed)
    net, tokenizer = load_base(preset.model, preset.num_layers, preset.attention)
    net.add_adapter(task.name, config=seq_bn_config())
    add_task_head(net, task, task.name)
    with quiet_activation():
        net.train_adapter(task.name)  # freezes the base model; adapter and head train
    feats = encode_splits(task, rows, tokenizer, preset)
    cfg = FitConfig(batch_size=preset.batch_size, eval_batch_size=preset.eval_batch_size,
                    warmup_ratio=preset.warmup_ratio, seed=seed, progress=progress, desc=f"{role} {task.name}",
                    cpu_precision=preset.cpu_precision, **stage1_fit_settings(preset, role, k_shot))
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
    preset = get_preset(preset)
    preset = preset.with_(model=model)
    check_untrusted(preset.model)  # before anything is written (CVE-2026-4372)
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    role = effective_role(preset, role, k_shot)
    final = Path(out) if out is not None else source_dir(task, preset, seed, k_shot, role=role, data_dir=data_dir)
    settings = _settings(task, preset, seed, k_shot, role, data_dir)
    if not force and _reusable(final, settings):
        return SourceResult(final, read_json(final / "metrics.json"), cached=True)
    check_writable(final, "adapter folder")
    with folder_lock(final, "adapter folder"):
        if not force and _reusable(final, settings):  # another process trained it while we waited
            return SourceResult(final, read_json(final / "metrics.json"), cached=True)
        return _train_and_save(task, preset, final, settings, data_dir, seed, k_shot, progress, role)


def _train_and_save(task: Task, preset: Preset, final: Path, settings: dict, data_dir, seed: int,
                    k_shot: Optional[int], progress: bool, role: str) -> SourceResult:
    """train_source's work under the folder's lock: fit the adapter, then write its folder atomically."""
    task = data_mod.resolve_labels(task, data_dir)
    rows = load_task_data(task, preset, data_dir, k_shot, seed, as_source=role == "source")
    net, tokenizer, result, test = fit_source(task, preset, rows, seed, k_shot, progress, role)
    metrics = {"task": task.name, "base": settings["base"], "seed": seed, "k_shot": k_shot, "role": role,
               "metric": main_metric(task), "test": test, "validation": result.best_validation,
               "best_epoch": result.best_epoch, "steps": result.steps, "step_budget": result.step_budget,
               "seconds": result.seconds,
               "rows": {k: len(v) for k, v in rows.items()}, "precision": precision_used(preset.cpu_precision),
               "attention": attention_used(preset.attention)}
    metrics.update(loss_check(task, rows, result.history, f"adapter for {task.name}"))  # a failed run says so
    with atomic_dir(final) as tmp:
        net.save_adapter(str(tmp), task.name, with_head=True, use_safetensors=True)
        write_json(tmp / SOURCE_META, {"settings": settings, "hidden_size": net.config.hidden_size,
                                       "num_layers": net.config.num_hidden_layers, "files": _file_record(tmp)})
        write_text(tmp / "history.csv", history_csv(result.history))
        write_json(tmp / "metrics.json", metrics)
    return SourceResult(final, metrics, cached=False)


# -------------------------------------------------------------------------------------- loading
def check_adapter_folder(folder: Path, model, name: str) -> None:
    """Raise a clear error if `folder` is not a complete seq_bn adapter for `model`'s base."""
    check_adapter_files(folder, model.config, getattr(model, "scalearn_base", None), name)


def _check_adapter_config(meta: dict, config, name: str) -> None:
    """An adapter_config.json's hidden size, model type and seq_bn fields against the base model's config."""
    if meta.get("hidden_size") not in (None, config.hidden_size):
        raise ValueError(f"source {name!r} has hidden size {meta['hidden_size']} but the base model has "
                         f"{config.hidden_size}: it was trained on another base model")
    if meta.get("model_type") and meta["model_type"] != config.model_type:
        raise ValueError(f"source {name!r} was trained on a {meta['model_type']} model, the base model is "
                         f"{config.model_type}")
    adapter = meta.get("config", {})
    for key, want in _REQUIRED.items():
        if key in adapter and adapter[key] != want:
            raise ValueError(f"source {name!r} is not a seq_bn (Pfeiffer) adapter: {key}={adapter[key]!r}, "
                             f"ScaLearn needs {want!r}")


def _weight_layers(path: Path, name: str) -> set:
    """The encoder layer indices that a weights file holds adapter weights for (a corrupt file: clear error)."""
    try:
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), "pt") as fh:
                keys = list(fh.keys())
        else:
            keys = list(torch.load(path, map_location="cpu", weights_only=True))
    except Exception as err:
        raise ValueError(f"source {name!r}: {path} cannot be read ({type(err).__name__}: {err}); the file is corrupt "
                         "or truncated: delete its folder and retrain it (train-source <task> --force)") from None
    return {int(m.group(1)) for k in keys for m in [re.search(r"\.layer\.(\d+)\.", k)] if m}


def check_adapter_files(folder: Path, config, base: Optional[str], name: str) -> None:
    """Raise a clear error unless `folder` is a complete, intact seq_bn adapter for a base model with this
    transformers `config` (and scalearn model id `base`, when known); reads no model weights."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"source {name!r}: adapter folder {folder} does not exist")
    cfg_path = folder / "adapter_config.json"
    if not cfg_path.is_file() or weights_file(folder, "adapter") is None:
        raise ValueError(f"source {name!r}: {folder} is not a complete adapter folder (needs adapter_config.json "
                         "and adapter.safetensors or pytorch_adapter.bin); it may be corrupt or half-written: delete "
                         "it and retrain")
    hub.check_adapter_configs(folder)  # CVE-2026-4372: no config reaches adapters unchecked
    _check_adapter_config(read_json(cfg_path), config, name)
    meta = read_json(folder / SOURCE_META) if (folder / SOURCE_META).is_file() else None
    if meta is not None and base is not None:
        trained_on = meta["settings"]["base"]
        if trained_on != base:
            raise ValueError(f"source {name!r} was trained on base model {trained_on!r} but the target uses "
                             f"{base!r}; train the sources on the same base model")
    problem = corruption(folder)
    if problem:
        raise ValueError(f"source {name!r}: {folder} is corrupt ({problem}); delete it and retrain it "
                         "(train-source <task> --force)")
    layers = _weight_layers(_weights_file(folder), name)
    if layers != set(range(config.num_hidden_layers)):
        raise ValueError(f"source {name!r} has adapter weights for {len(layers)} layer(s) but the base model has "
                         f"{config.num_hidden_layers}: it was trained on a base model with another layer count")


def _check_hub_adapter(ref: str, config) -> None:
    """A hub adapter, before any training: an id of our table (or the opt-in, hub.check_trusted), fetched (or in the
    cache: hub.download_adapter checks its configs), and fitting the base model as a local folder must."""
    folder = hub.download_adapter(ref)  # offline and not cached, or no such repository: a clear error, now
    check_adapter_files(folder, config, None, ref)


def check_untrusted(model: str, refs: Sequence[str] = ()) -> None:
    """Before anything is written or fetched: the base model's config.json (a local folder's; a hub id only needs to
    be one we name, or the opt-in), each hub-id source in our table (or the opt-in), each adapter folder's configs.
    UntrustedConfigError (one line) otherwise; see models.check_model (CVE-2026-4372)."""
    check_model(model, fetch=False)
    for ref in refs:
        ref = str(ref)
        if Path(ref).expanduser().is_dir():
            hub.check_adapter_configs(Path(ref).expanduser())
        elif hub.is_hub_id(ref) and task_name_of(ref) is None:
            hub.check_trusted(ref)


def check_sources(refs, preset: Preset, data_dir=None) -> None:
    """Before any training: every source is a task whose data is there, an adapter folder that fits the base
    model (hidden size, layers, architecture, seq_bn fields, intact files), or a hub id (fetched and checked alike)."""
    config = None
    for ref in refs:
        ref = str(ref)
        if Path(ref).expanduser().is_dir() or (hub.is_hub_id(ref) and task_name_of(ref) is None):
            config = config or load_config(preset.model, preset.num_layers, preset.attention)
            if not Path(ref).expanduser().is_dir():
                _check_hub_adapter(ref, config)
            else:
                check_adapter_files(Path(ref).expanduser(), config, model_id(preset.model, preset.num_layers), ref)
            continue
        data_mod.check_source_data(_source_task(ref), data_dir)


def load_adapter_into(model, ref: Union[str, Path], name: str) -> None:
    """Load an adapter folder or hub id into `model` as adapter `name` (no head), with checks.

    A hub id is downloaded first (hub.download_adapter) and its folder gets the same seq_bn checks as a local one.
    """
    ref = str(ref)
    folder = hub.download_adapter(ref) if hub.is_hub_id(ref) else Path(ref)
    where = f"{folder} (hub adapter {ref})" if hub.is_hub_id(ref) else ref
    check_adapter_folder(folder, model, name)
    before = _load_stamp(folder)
    try:
        model.load_adapter(str(folder), load_as=name, with_head=False, use_safetensors=True)
    except Exception as err:  # adapters' own errors about shapes or files are cryptic
        raise ValueError(f"source {name!r}: could not load the adapter in {where} ({err}); the folder may be "
                         "corrupt or from another base model") from None
    if _load_stamp(folder) != before:
        raise ValueError(f"source {name!r}: {where} was replaced while it was being loaded (another process "
                         "retrained it?); run again")
    # the identity of the bytes loaded, now: what a run folder records (a source replaced later is not the one used)
    fingerprints = getattr(model, "scalearn_loaded", None)
    if fingerprints is None:
        fingerprints = model.scalearn_loaded = {}
    fingerprints[ref] = f"hub:{ref}" if hub.is_hub_id(ref) else before[1]
    missing = [l for l, layer in enumerate(encoder_layers(model)) if name not in layer.output.adapters]
    if missing:
        raise ValueError(f"source {name!r} has no adapter in layers {missing}: it was trained on a base model "
                         f"with another layer count")


def _load_stamp(folder: Path) -> tuple:
    """(inode, size, mtime_ns) and sha256 of an adapter folder's weights file: equal before and after a load, the
    bytes loaded are the ones fingerprinted."""
    path = _weights_file(Path(folder))
    st = path.stat()
    return (st.st_ino, st.st_size, st.st_mtime_ns), weights_fingerprint(folder)


def loaded_fingerprints(model) -> Dict[str, str]:
    """{source reference: fingerprint of the weights load_adapter_into loaded into `model` for it}."""
    return dict(getattr(model, "scalearn_loaded", None) or {})


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


def _source_task(ref: str) -> Task:
    """The task a source reference names, or a clear error (a path that does not exist, or an unknown name)."""
    try:
        return get_task(ref)
    except ValueError:
        pass
    if any(c in ref for c in ("/", "\\", "~")) or ref.startswith("."):
        raise FileNotFoundError(f"source {ref!r}: adapter folder {Path(ref).expanduser().absolute()} does not exist "
                                "(and it is not a hub id like AdapterHub/roberta-base-rte_pfeiffer)")
    raise ValueError(f"source {ref!r} is neither a task name, an adapter folder nor a hub id "
                     "(like AdapterHub/roberta-base-rte_pfeiffer)")


def resolve_source(ref: str, preset: Preset, *, data_dir=None, seed: int = 0, k_shot: Optional[int] = None,
                   progress: bool = True, role: str = "source") -> str:
    """A source reference → adapter folder or hub id; task names are trained (or taken from the cache)."""
    if Path(ref).expanduser().is_dir():
        return str(Path(ref).expanduser())
    if hub.is_hub_id(ref) and task_name_of(ref) is None:  # "glue/cola" is the task, as it is as a target
        return ref
    task = _source_task(ref)
    return str(train_source(task, preset, data_dir=data_dir, seed=seed, k_shot=k_shot, progress=progress,
                            role=role).path)


# ------------------------------------------------------------------------ source references
def order_sources(target: Task, sources: Sequence[str], include_target: bool = True) -> List[str]:
    """The paper's protocol: the target's own adapter is a source, placed last (unless excluded)."""
    names = [s.strip() for s in sources if s and s.strip()]
    own = [s for s in names if same_task(s, target)]
    rest = [s for s in names if not same_task(s, target)]
    ordered = rest + (own or [target.name]) if include_target else rest
    if not ordered and own:
        raise ValueError(f"the only source given, {own[0]!r}, is the target {target.name!r} itself, which "
                         "--exclude-target (include_target=False) removes: add other sources, or drop --exclude-target")
    if not ordered:
        raise ValueError("empty source list: give at least one source task, adapter folder or hub id")
    keys = [_source_key(s) for s in ordered]  # "cola" and "CoLA", a folder and its absolute path: one source
    dupes = sorted({s for s, k in zip(ordered, keys) if keys.count(k) > 1})
    if dupes:
        raise ValueError(f"duplicate sources {dupes}: list each source once")
    return ordered


def _source_key(ref: str) -> str:
    """What a source reference means: its task name, a folder's resolved path, or the hub id."""
    if task_name_of(ref):
        return task_name_of(ref)
    folder = Path(ref).expanduser()
    return str(folder.resolve()) if folder.is_dir() else ref


def task_name_of(ref: str) -> Optional[str]:
    """The canonical task name if `ref` names a task, else None (a folder or hub id)."""
    try:
        return get_task(ref).name
    except ValueError:
        return None


def same_task(ref: str, task: Task) -> bool:
    return task_name_of(ref) == task.name


def is_task_ref(ref: str) -> bool:
    return task_name_of(ref) is not None


def source_label(ref: str) -> str:
    """A short adapter name for a reference: the task name; for a folder the task (or adapter name) it was saved
    with; else the folder / hub id tail."""
    name = task_name_of(ref) or (adapter_folder_name(ref) if Path(ref).is_dir() else None)
    return re.sub(r"[^A-Za-z0-9_-]+", "_", name or Path(ref.rstrip("/")).name)


def source_names(refs: Sequence[str]) -> List[str]:
    """source_label of each reference, made unique by a suffix ("rte", "rte_2") where two would collide."""
    names: List[str] = []
    for ref in refs:
        base = name = source_label(ref)
        i = 2
        while name in names:
            name, i = f"{base}_{i}", i + 1
        names.append(name)
    return names


def own_adapter_seed(preset: Preset, seed: int) -> int:
    """The seed of the target's own adapter inside a stage-2 run: seed 0's for every seed (the authors) or
    the run's own (preset.own_adapter_seed="per_seed")."""
    return seed if preset.own_adapter_seed == "per_seed" else 0


@dataclass(frozen=True)
class Stage1Adapter:
    """One stage-1 adapter a transfer loads: a source of the zoo (seed 0, the source budget) or the target's own
    adapter (role "target": the target budget or k-shot)."""

    task: str
    seed: int = 0
    k_shot: Optional[int] = None
    role: str = "source"


def stage1_adapter(ref: str, target: Task, preset: Preset, seed: int, k_shot: Optional[int]) -> Optional[Stage1Adapter]:
    """The stage-1 adapter that a transfer to `target` (run seed `seed`, k-shot or full data) loads for the source
    `ref`: the target's own adapter (seed own_adapter_seed, the target budget or k-shot), another task's zoo adapter
    (seed 0, the source budget), or None for an adapter folder or hub id (nothing to train)."""
    name = task_name_of(ref)
    if name is None:
        return None
    return Stage1Adapter(name, own_adapter_seed(preset, seed), k_shot, "target") if name == target.name \
        else Stage1Adapter(name)
