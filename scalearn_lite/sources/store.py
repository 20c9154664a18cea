"""Where stage-1 adapters live and whether one can be reused: roles, folders, cache keys, integrity, fingerprints.

A stage-1 adapter's folder (`source_dir`) holds AdapterHub's files, `scalearn_source.json` (SOURCE_META: the cache
key, with the data's identity, and the size, mtime and sha256 of each adapter/head file), `history.csv` and,
written last, `metrics.json`. A folder without `metrics.json` is unfinished; one whose files no longer match their
sha256 is corrupt (`corruption`).
"""
from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Dict, Optional, Union

import torch

from .. import data as data_mod
from ..config import Preset
from ..files import is_finished, read_json
from ..models import model_id
from ..tasks import Task, get_task

SOURCE_META = "scalearn_source.json"

# ---------------------------------------------------------------------------------------- roles
ROLES = ("source", "target")


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    return role


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


# ---------------------------------------------------------------------------------------- paths
def source_dir(task: Union[str, Task], preset: Preset, seed: int = 0, k_shot: Optional[int] = None,
               root=None, role: str = "source", data_dir=None) -> Path:
    """data_cache/adapters/<model-id>/<task>[-target-<budget> | -k<K>-<budget>][-d<data>]/seed<k>/: adapter_dir
    for the role that `role` and `k_shot` come to (effective_role)."""
    task = get_task(task) if isinstance(task, str) else task
    return adapter_dir(task, preset, seed, k_shot, effective_role(preset, role, k_shot), root, data_dir)


def adapter_dir(task: Task, preset: Preset, seed: int, k_shot: Optional[int], role: str, root=None,
                data_dir=None) -> Path:
    """The folder of a stage-1 adapter whose role is decided (effective_role's answer): data_cache/adapters/
    <model-id>/<task>[-target-<budget> | -k<K>-<budget>][-d<data>]/seed<k>/.

    A target's own adapter depends on the target budget, so two presets that differ there (cpu and demo: 6 and 3
    epochs) get two folders instead of retraining each other's adapter in turn; <budget> is 8 hex digits of the
    budget fields. <data> is 8 hex digits of the data's identity (data.data_identity of `data_dir`: each local
    file's sha256, or the hub revision), so that an adapter trained on other files gets its own folder instead of
    overwriting this one (none where the task's data cannot be found here). The cache key in scalearn_source.json
    holds everything."""
    root = Path(root) if root is not None else data_mod.cache_dir() / "adapters"
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


def file_record(folder: Path) -> Dict[str, dict]:
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


def reusable(folder: Path, settings: dict) -> bool:
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


def require_weights_file(folder: Path) -> Path:
    """weights_file(folder, "adapter"), or a clear error where the folder has none."""
    path = weights_file(folder, "adapter")
    if path is None:
        raise FileNotFoundError(f"{folder} has no adapter weights ({' or '.join(WEIGHT_FILES['adapter'])})")
    return path


def weights_fingerprint(folder) -> str:
    """sha256 of an adapter folder's weights file; read from SOURCE_META while the file's size and mtime match."""
    path = require_weights_file(Path(folder))
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


# ------------------------------------------------------------------------------------ cache key
# The preset fields that change a stage-1 adapter: the cache key (stage-2 fields do not retrain sources).
_STAGE1_FIELDS = ("model", "num_layers", "batch_size", "max_validation", "max_test", "warmup_ratio", "max_steps",
                  "cpu_precision", "attention")
_ROLE_FIELDS = {"source": ("source_max_train", "source_lr", "source_epochs", "source_patience"),
                "target": ("max_train", "target_lr", "target_epochs", "target_patience"),
                "few_shot": ("target_lr", "few_shot_steps", "few_shot_patience", "few_shot_max_validation")}


def stage1_fit_settings(preset: Preset, role: str, k_shot: Optional[int]) -> dict:
    """lr, epochs, patience, max_steps and select_by of a stage-1 run: fit_settings for the role that `role` and
    `k_shot` come to (effective_role)."""
    return fit_settings(preset, effective_role(preset, role, k_shot), k_shot)


def fit_settings(preset: Preset, role: str, k_shot: Optional[int]) -> dict:
    """lr, epochs, patience, max_steps and select_by of a stage-1 run whose role is decided: the source budget,
    the target budget, or the few-shot protocol (a step budget overriding epochs, early stopping on the metric)."""
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


def cache_key(task: Task, preset: Preset, seed: int, k_shot: Optional[int], role: str, data_dir=None) -> dict:
    """The cache key of a stage-1 adapter whose role is decided: task, base, seed, role, budget fields and the
    data's identity (what scalearn_source.json's "settings" holds)."""
    return {"task": task.name, "base": model_id(preset.model, preset.num_layers), "seed": seed, "k_shot": k_shot,
            "role": role, "max_length": preset.length_for(task.name), "preset": _budget_fields(preset, role, k_shot),
            "data": data_mod.data_identity(task, data_dir)}
