"""Run folders: what one transfer run writes, how a finished folder is checked before it is reused, and load_run.

A folder holds config.json (the TransferSpec and a fingerprint of each source's weights), history.csv,
omega.json + omega.safetensors (ω methods), fusion/ (AdapterFusion), head/ (safetensors) and, written last,
metrics.json: a folder without it is unfinished. Nothing in it needs pickle to read; older folders (omega.pt,
pytorch_*.bin) still load. Folders appear complete or not at all (files.atomic_dir).
"""
from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence

import torch

from .baselines import fuse_sources
from .config import FIXED_OMEGA, VARIANTS, Preset, preset_from_dict
from .device import default_device
from .hub import check_adapter_configs, is_hub_id
from .files import atomic_dir, damage, is_finished, read_json, write_json, write_text
from .methods import HEAD, OMEGA_METHODS, build_scalearn
from .models import load_base, model_id, quiet_activation, untrusted_allowed, untrusted_hub_allowed
from .sources import (check_untrusted, history_csv, loaded_fingerprints, source_dir, source_fingerprint, stage1_adapter,
                      task_name_of, weights_fingerprint)
from .tasks import get_task


@dataclass
class RunResult:
    path: Path
    metrics: dict
    reused: bool = False  # a finished run folder was read back, nothing was trained


@dataclass
class TransferSpec:
    """Everything that defines one transfer run (saved as config.json)."""

    target: str
    sources: List[str]
    method: str
    preset: Preset
    seed: int = 0
    k_shot: Optional[int] = None
    include_target: bool = True
    source_refs: List[str] = field(default_factory=list)  # resolved folders / hub ids, same order as sources
    data: dict = field(default_factory=dict)  # the target's data (data.data_identity): hub revision or file sha256s


def sources_label(spec: TransferSpec, refs: Optional[Sequence[str]]) -> str:
    """The run folder's sources part: the source names cut to 40 characters ("none" without sources) + a short hash
    of the source references (task names, absolute folder paths, hub ids) and the preset's name, so that another
    source set or another preset (cpu and demo write to one output folder) gets its own folder; a preset changed
    under the same name is refused by check_same_run."""
    keys = [task_name_of(r) or (r if is_hub_id(r) else str(Path(r).expanduser().absolute()))
            for r in (refs if refs is not None else spec.sources)] + [f"preset {spec.preset.name}"]
    digest = hashlib.sha256("\n".join(keys).encode()).hexdigest()[:8]
    return f"{'+'.join(spec.sources)[:40] or 'none'}-{digest}"


def run_dir(spec: TransferSpec, root="runs", refs: Optional[Sequence[str]] = None) -> Path:
    """runs/<model-id>/<target>[-k<K>]/<method>/<sources>-<hash>/seed<k>/ (see sources_label)"""
    target = spec.target if spec.k_shot is None else f"{spec.target}-k{spec.k_shot}"
    return (Path(root) / model_id(spec.preset.model, spec.preset.num_layers) / target / spec.method
            / sources_label(spec, refs) / f"seed{spec.seed}")


def run_config(spec: TransferSpec, net=None) -> dict:
    """config.json: the spec, and a fingerprint of each source's weights (in the order of `sources`): those of the
    bytes `net` loaded (sources.loaded_fingerprints), taken when it loaded them, not now."""
    loaded = loaded_fingerprints(net) if net is not None else {}
    return {**asdict(spec), "preset": asdict(spec.preset),
            "source_fingerprints": [loaded.get(str(r)) or source_fingerprint(r) for r in spec.source_refs]}


def check_intact(folder: Path) -> None:
    """Raise a one-line ValueError naming the damaged file unless every file of a run folder still has the size and
    sha256 recorded when it was written (files.MANIFEST; folders written before manifests pass)."""
    problem = damage(folder)
    if problem:
        raise ValueError(f"run folder {folder} is corrupt: {problem}; rerun it with --force (transfer(..., "
                         "force=True)) to retrain it, or delete the folder")


def check_sources_unchanged(folder: Path, cfg: dict, allow_changed_sources: bool = False) -> None:
    """load_run: every source folder still holds the weights the run was trained with (config.json's
    source_fingerprints); else a ValueError naming the source, or with `allow_changed_sources` a warning."""
    saved = cfg.get("source_fingerprints") or []
    if len(saved) != len(cfg.get("source_refs", [])):
        warnings.warn(f"{folder} has no fingerprint of its sources' weights (written by an older version): they are "
                      "not checked")
        return
    for name, ref, then in zip(cfg["sources"], cfg["source_refs"], saved):
        if is_hub_id(ref) and not Path(ref).is_dir():
            continue  # "hub:<id>": the id is the identity
        if not Path(ref).is_dir():
            raise FileNotFoundError(f"run {folder}: its source {name!r} ({ref}) is gone; retrain the source "
                                    "(train-source) and rerun the run with --force")
        now = source_fingerprint(ref)
        if now != then:
            msg = (f"run {folder} was trained with source {name!r} ({ref}) whose weights have changed since (sha256 "
                   f"{then[:12]}… then, {now[:12]}… now)")
            if not allow_changed_sources:
                raise ValueError(f"{msg}; rerun it with --force on the current sources, or load_run(..., "
                                 "allow_changed_sources=True) to load it with the current weights anyway")
            warnings.warn(f"{msg}; loaded with the current weights (allow_changed_sources=True)")


def check_same_run(folder: Path, spec: TransferSpec) -> None:
    """A finished folder is reused only if it holds this very run (source folders may have moved)."""
    try:
        saved = read_json(folder / "config.json")
    except (OSError, ValueError) as err:
        raise ValueError(f"{folder} has metrics.json but no readable config.json ({err}): the run folder is "
                         f"corrupt; delete it or rerun with --force") from None
    want = json.loads(json.dumps(run_config(spec)))  # tuples → lists, as read back from JSON
    # refs may move (weights are compared by check_same_sources); data is compared when both sides know it
    # (folders written before it was kept, or no data here to hash: not)
    skip = {"source_refs", "source_fingerprints"} | ({"data"} if not (saved.get("data") and want.get("data")) else set())
    diff = sorted(k for k in set(want) | set(saved) if k not in skip and want.get(k) != saved.get(k))
    if diff:
        detail = "; ".join(f"{k}: saved {saved.get(k)!r}, asked {want.get(k)!r}" for k in diff)
        raise ValueError(f"{folder} already holds a finished run with other settings ({detail}); "
                         f"pass another --out, or --force to overwrite it")


def _current_fingerprint(ref: str, spec: TransferSpec, data_dir=None) -> Optional[str]:
    """The fingerprint a source would have if the run were trained now; None for a task whose stage-1 adapter is
    not cached (it would be retrained from the same settings)."""
    a = stage1_adapter(ref, get_task(spec.target), spec.preset, spec.seed, spec.k_shot)
    if a is not None:  # the folder the run's stage 1 resolves it to
        folder = source_dir(a.task, spec.preset, a.seed, a.k_shot, role=a.role, data_dir=data_dir)
        return weights_fingerprint(folder) if is_finished(folder) else None
    return source_fingerprint(str(Path(ref).expanduser()) if Path(ref).expanduser().is_dir() else ref)


def check_same_sources(folder: Path, spec: TransferSpec, names_in: List[str], data_dir=None) -> None:
    """A finished run is reused only if every source still has the weights it was trained with."""
    if spec.method in ("head_only", "finetune", "adapter"):
        return
    saved = read_json(folder / "config.json").get("source_fingerprints")
    if not saved or len(saved) != len(names_in):
        raise ValueError(f"{folder} holds a finished run without a fingerprint of its sources' weights (written by an "
                         "older version), so it cannot be checked against the sources now; rerun with --force, or "
                         "pass another --out")
    for name, ref, then in zip(spec.sources, names_in, saved):
        now = _current_fingerprint(ref, spec, data_dir)
        if now is not None and now != then:
            raise ValueError(f"{folder} holds a finished run whose source {name!r} ({ref}) had other weights "
                             f"(sha256 {then[:12]}… then, {now[:12]}… now); rerun with --force to retrain it on "
                             "the current sources, or pass another --out")


def reuse_run(final: Path, spec: TransferSpec, names_in: List[str], data_dir=None) -> RunResult:
    check_intact(final)  # a damaged folder is never reported "reused"
    check_same_run(final, spec)
    check_same_sources(final, spec, names_in, data_dir)
    return RunResult(final, read_json(final / "metrics.json"), reused=True)


def write_run(final: Path, spec: TransferSpec, net, result, metrics: dict) -> None:
    with atomic_dir(final) as tmp:
        write_json(tmp / "config.json", run_config(spec, net))
        write_text(tmp / "history.csv", history_csv(result.history))
        if hasattr(net, "scalearn"):
            save_omega(tmp / OMEGA_FILE, net.scalearn.omega.weight, net.scalearn.sources)
            write_json(tmp / "omega.json", omega_json(net))
        if spec.method == "adapterfusion":  # the fusion layers (query, key, value); the sources stay in their folders
            net.save_adapter_fusion(str(tmp / "fusion"), list(spec.sources), use_safetensors=True)
        if spec.method != "finetune":
            net.save_head(str(tmp / "head"), HEAD, use_safetensors=True)
        write_json(tmp / "metrics.json", metrics)


def omega_json(net) -> dict:
    """ω in a plain form: sources in order, layers, per layer × source (mean) and per hidden unit."""
    sl = net.scalearn
    values = sl.omega.layer_values()  # (L, S, d|1)
    return {"sources": sl.sources, "num_layers": values.shape[0], "omega_shape": sl.cfg.omega_shape,
            "share_layers": sl.cfg.share_layers, "per_layer_source": values.mean(-1).tolist(),
            "per_unit": values.tolist() if sl.cfg.omega_shape == "vector" else None}


OMEGA_FILE = "omega.safetensors"


def save_omega(path: Path, omega: torch.Tensor, sources: List[str]) -> None:
    """ω as safetensors: one tensor "omega", the source order in the metadata (no pickle)."""
    from safetensors.torch import save_file

    save_file({"omega": omega.detach().cpu().contiguous()}, str(path), metadata={"sources": json.dumps(sources)})


def load_omega(folder: Path) -> dict:
    """{"omega": tensor, "sources": [...]} from omega.safetensors, or from an older folder's omega.pt."""
    folder = Path(folder)
    if (folder / OMEGA_FILE).is_file():
        from safetensors import safe_open

        try:
            with safe_open(str(folder / OMEGA_FILE), framework="pt") as fh:
                return {"omega": fh.get_tensor("omega"), "sources": json.loads(fh.metadata()["sources"])}
        except Exception as err:  # truncated or overwritten: safetensors' own message names no file
            raise ValueError(f"{folder / OMEGA_FILE} cannot be read ({type(err).__name__}: {err}): the run folder is "
                             "corrupt; rerun it with --force") from None
    if (folder / "omega.pt").is_file():
        return torch.load(folder / "omega.pt", map_location="cpu", weights_only=True)
    raise FileNotFoundError(f"{folder} has neither {OMEGA_FILE} nor omega.pt: the run folder is incomplete")


RELOADABLE = OMEGA_METHODS + ("fixed_omega", "average", "adapterfusion")


def load_run(folder, device=None, *, allow_changed_sources: bool = False,
             allow_untrusted_hub: Optional[bool] = None) -> tuple:
    """Rebuild a saved run (a ScaLearn variant, `average` or `adapterfusion`): (model in eval mode, tokenizer, task,
    config).
    The model goes to `device` (None: device.default_device(), where training runs: CUDA when there is one).
    Checked first: the folder's files (check_intact), its sources' weights (check_sources_unchanged; opt-in
    `allow_changed_sources`), its base model and hub sources (sources.check_untrusted; opt-in `allow_untrusted_hub`)."""
    folder = Path(folder)
    if not is_finished(folder):
        raise FileNotFoundError(f"{folder} is not a finished run folder (no metrics.json)")
    cfg = read_json(folder / "config.json")
    if cfg["method"] not in RELOADABLE:
        raise ValueError(f"load_run rebuilds {', '.join(RELOADABLE)} runs; {folder} is a {cfg['method']!r} run")
    preset = preset_from_dict(cfg["preset"])
    check_intact(folder)
    check_sources_unchanged(folder, cfg, allow_changed_sources)
    with untrusted_hub_allowed(untrusted_allowed(allow_untrusted_hub)):
        check_untrusted(preset.model, cfg["source_refs"])  # CVE-2026-4372: before anything is loaded
        for part in ("head", "fusion"):  # the run's own adapter configs too
            check_adapter_configs(folder / part)
        net, tokenizer = load_base(preset.model, preset.num_layers, preset.attention)
        if cfg["method"] == "adapterfusion":
            _load_fusion(net, folder, cfg)
        else:
            _load_omega(net, folder, cfg)
    _load_head(net, folder)
    net.to(default_device() if device is None else device).eval()
    return net, tokenizer, get_task(cfg["target"]), cfg


def _load_omega(net, folder: Path, cfg: dict) -> None:
    variant = VARIANTS.get(cfg["method"], FIXED_OMEGA)
    sl = build_scalearn(net, cfg["sources"], cfg["source_refs"], variant)
    saved = load_omega(folder)
    if saved["sources"] != sl.sources or saved["omega"].shape != sl.omega.weight.shape:
        raise ValueError(f"{folder}: ω does not match its config (sources {saved['sources']}, "
                         f"shape {tuple(saved['omega'].shape)}): the run folder is corrupt")
    sl.set_omega(saved["omega"])


def _load_fusion(net, folder: Path, cfg: dict) -> None:
    if not (folder / "fusion").is_dir():
        raise FileNotFoundError(f"{folder} has no fusion/ folder: it was written before fusion weights were saved; "
                                f"rerun it with --force")
    fuse = fuse_sources(net, cfg["sources"], cfg["source_refs"])
    net.load_adapter_fusion(str(folder / "fusion"), with_head=False, use_safetensors=True)  # (None in 1.3.0)
    want = ",".join(cfg["sources"])
    if want not in net.adapters_config.fusions:
        raise ValueError(f"{folder}/fusion holds a fusion of {sorted(net.adapters_config.fusions)}, but the run's "
                         f"sources are {cfg['sources']}: the run folder is corrupt")
    with quiet_activation():
        net.set_active_adapters(fuse)


def _load_head(net, folder: Path) -> None:
    """The run's head from head/ (safetensors), with an error naming the file when it is damaged."""
    try:
        net.load_head(str(folder / "head"), load_as=HEAD, use_safetensors=True)
    except Exception as err:  # adapters calls any unreadable file "a pytorch checkpoint"
        raise ValueError(f"{folder / 'head'} cannot be loaded ({type(err).__name__}: {str(err).splitlines()[0]}): the "
                         "run folder is corrupt; rerun it with --force") from None
