"""Checking a stage-1 adapter against the base model (before any training) and loading it into a model: the seq_bn
fields the batched bank's formula needs, hidden size, layer count, intact files, checked configs (CVE-2026-4372);
the per-layer weights the ScaLearn bank takes, with the fingerprint of the bytes loaded.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import torch

from .. import data as data_mod
from .. import hub
from ..config import Preset
from ..files import read_json
from ..models import check_model, encoder_layers, load_config, model_id
from ..scaling import AdapterWeights
from .refs import ref_kind, source_task
from .store import SOURCE_META, corruption, require_weights_file, weights_file, weights_fingerprint

# What a seq_bn adapter must look like for the formula of the batched bank to hold.
_REQUIRED = {"original_ln_before": True, "original_ln_after": True, "residual_before_ln": True,
             "adapter_residual_before_ln": False, "ln_before": False, "ln_after": False, "mh_adapter": False,
             "output_adapter": True, "non_linearity": "relu", "use_gating": False, "phm_layer": False}


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
    layers = _weight_layers(require_weights_file(folder), name)
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
    for ref in map(str, refs):
        kind = ref_kind(ref)
        if kind == "folder":
            hub.check_adapter_configs(Path(ref).expanduser())
        elif kind == "hub":
            hub.check_trusted(ref)


def check_sources(refs, preset: Preset, data_dir=None) -> None:
    """Before any training: every source is a task whose data is there, an adapter folder that fits the base
    model (hidden size, layers, architecture, seq_bn fields, intact files), or a hub id (fetched and checked alike)."""
    config = None
    for ref in map(str, refs):
        kind = ref_kind(ref)
        if kind == "task":
            data_mod.check_source_data(source_task(ref), data_dir)
            continue
        config = config or load_config(preset.model, preset.num_layers, preset.attention)
        if kind == "hub":
            _check_hub_adapter(ref, config)
        else:
            check_adapter_files(Path(ref).expanduser(), config, model_id(preset.model, preset.num_layers), ref)


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
    path = require_weights_file(Path(folder))
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
