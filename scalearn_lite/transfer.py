"""Stage 2: transfer to a target task with ScaLearn (four variants) or a baseline, under one API.

Every method gets the same data, base model, sources and budget, and writes one run folder:
config.json, history.csv, omega.json + omega.safetensors (ω methods), head/ (safetensors) and, last, metrics.json;
nothing in it needs pickle to read. Older folders (omega.pt, pytorch_*.bin) still load.
"""
from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import torch

from . import data as data_mod
from .config import PAPER_NAMES, VARIANTS, Preset, ScaLearnConfig, get_preset, preset_from_dict
from .hub import is_hub_id
from .io import atomic_dir, check_writable, folder_lock, read_json, write_json, write_text
from .metrics import main_metric
from .models import attention_used, load_base, model_id, quiet_activation
from .scaling import AdapterWeights, ScaLearn, attach
from .baselines import rank_by_similarity, soup_selection, soup_weights, task_sentences
from .sources import (add_task_head, adapter_folder_name, check_sources, encode_splits, is_complete,
                      load_adapter_into, load_task_data, read_weights, resolve_source, source_dir, source_fingerprint,
                      history_csv, source_weights, train_source, weights_file, weights_fingerprint)
from .tasks import Task, get_task
from .train import FitConfig, evaluate, fit, precision_used, set_seed

OMEGA_METHODS = tuple(VARIANTS)  # scalearn, scalearn_uniform, scalearn_pp, scalearn_uniform_pp
BASELINES = ("adapter", "adapterfusion", "average", "head_only", "adaptersoup", "finetune")
METHODS = OMEGA_METHODS + BASELINES
METHOD_NAMES = {**PAPER_NAMES, "adapter": "Adapter", "adapterfusion": "AdapterFusion", "average": "Average (ω=1/S)",
                "head_only": "Head only (ω=0)", "adaptersoup": "AdapterSoup", "finetune": "Full fine-tuning"}
HEAD = "target"


def check_method(method: str) -> str:
    """The method name, or a ValueError listing the valid ones."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    return method


def order_sources(target: Task, sources: Sequence[str], include_target: bool = True) -> List[str]:
    """The paper's protocol: the target's own adapter is a source, placed last (unless excluded)."""
    names = [s.strip() for s in sources if s and s.strip()]
    own = [s for s in names if _same_task(s, target)]
    rest = [s for s in names if not _same_task(s, target)]
    ordered = rest + (own or [target.name]) if include_target else rest
    if not ordered and own:
        raise ValueError(f"the only source given, {own[0]!r}, is the target {target.name!r} itself, which "
                         "--exclude-target (include_target=False) removes: add other sources, or drop --exclude-target")
    if not ordered:
        raise ValueError("empty source list: give at least one source task, adapter folder or hub id")
    dupes = sorted({s for s in ordered if ordered.count(s) > 1})
    if dupes:
        raise ValueError(f"duplicate sources {dupes}: list each source once")
    return ordered


def task_name_of(ref: str) -> Optional[str]:
    """The canonical task name if `ref` names a task, else None (a folder or hub id)."""
    try:
        return get_task(ref).name
    except ValueError:
        return None


def _same_task(ref: str, task: Task) -> bool:
    return task_name_of(ref) == task.name


def is_task_ref(ref: str) -> bool:
    return task_name_of(ref) is not None


def source_label(ref: str) -> str:
    """A short adapter name for a reference: the task name; for a folder the task (or adapter name) it was saved
    with; else the folder / hub id tail."""
    name = task_name_of(ref) or (adapter_folder_name(ref) if Path(ref).is_dir() else None)
    return re.sub(r"[^A-Za-z0-9_-]+", "_", name or Path(ref.rstrip("/")).name)


def _source_names(refs: Sequence[str]) -> List[str]:
    """source_label of each reference, made unique by a suffix ("rte", "rte_2") where two would collide."""
    names: List[str] = []
    for ref in refs:
        base = name = source_label(ref)
        i = 2
        while name in names:
            name, i = f"{base}_{i}", i + 1
        names.append(name)
    return names


@dataclass
class RunResult:
    path: Path
    metrics: dict
    reused: bool = False  # a finished run folder was read back, nothing was trained


# ------------------------------------------------------------------------------- model building
def _bank_layers(per_source: List[List[AdapterWeights]]) -> List[List[AdapterWeights]]:
    return [list(per_layer) for per_layer in zip(*per_source)]  # [layer][source]


def build_scalearn(net, names: List[str], refs: List[str], cfg: ScaLearnConfig) -> ScaLearn:
    """Load the sources into `net`, stack them into per-layer banks and install ω (in place)."""
    per_source = [source_weights(net, ref, name) for name, ref in zip(names, refs)]
    scalearn = ScaLearn(cfg, names, _bank_layers(per_source), net.config.hidden_size)
    return attach(net, scalearn)


# ---------------------------------------------------------------------------------- the runner
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


def _sources_label(spec: TransferSpec, refs: Optional[Sequence[str]]) -> str:
    """The run folder's sources part: "none", or the source names (cut to 40 characters) + a short hash of the
    source references (task names, absolute folder paths, hub ids), so that another source set gets its own folder."""
    if not spec.sources:
        return "none"
    keys = [task_name_of(r) or (r if is_hub_id(r) else str(Path(r).expanduser().absolute()))
            for r in (refs if refs is not None else spec.sources)]
    digest = hashlib.sha256("\n".join(keys).encode()).hexdigest()[:8]
    return f"{'+'.join(spec.sources)[:40]}-{digest}"


def run_dir(spec: TransferSpec, root="runs", refs: Optional[Sequence[str]] = None) -> Path:
    """runs/<model-id>/<target>[-k<K>]/<method>/<sources>-<hash>/seed<k>/ (see _sources_label)"""
    target = spec.target if spec.k_shot is None else f"{spec.target}-k{spec.k_shot}"
    return (Path(root) / model_id(spec.preset.model, spec.preset.num_layers) / target / spec.method
            / _sources_label(spec, refs) / f"seed{spec.seed}")


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
    preset = get_preset(preset) if isinstance(preset, str) else preset
    preset = preset.with_(model=model)
    names_in = [] if method in ("head_only", "finetune") else order_sources(task, sources, include_target)
    spec = TransferSpec(task.name, _source_names(names_in), method, preset, seed, k_shot,
                        include_target)
    return spec, names_in


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


def own_adapter_seed(preset: Preset, seed: int) -> int:
    """The seed of the target's own adapter inside a stage-2 run: seed 0's for every seed (the authors) or
    the run's own (preset.own_adapter_seed="per_seed")."""
    return seed if preset.own_adapter_seed == "per_seed" else 0


def _stage1_refs(names_in: Sequence[str], task: Task, preset: Preset, seed: int, k_shot: Optional[int], data_dir,
                 progress: bool) -> List[str]:
    """Every source as an adapter reference, training stage 1 where needed: other tasks from the source zoo
    (seed 0, the source budget), the target's own adapter on the target rows (the target budget or k-shot)."""
    check_sources(names_in, preset, data_dir)  # every source is checked before any of them trains
    return [resolve_source(s, preset, data_dir=data_dir, seed=own_adapter_seed(preset, seed), k_shot=k_shot,
                           role="target", progress=progress) if _same_task(s, task)
            else resolve_source(s, preset, data_dir=data_dir, seed=0, progress=progress) for s in names_in]


@dataclass(frozen=True)
class Stage1Adapter:
    """One stage-1 adapter a transfer loads: a source of the zoo (seed 0, the source budget) or the target's own
    adapter (role "target": the target budget or k-shot)."""

    task: str
    seed: int = 0
    k_shot: Optional[int] = None
    role: str = "source"


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
    return [Stage1Adapter(task.name, own_adapter_seed(spec.preset, seed), k_shot, "target") if _same_task(s, task)
            else Stage1Adapter(task_name_of(s)) for s in names_in if is_task_ref(s)]


def train_stage1(adapters: Sequence[Stage1Adapter], preset: Union[str, Preset] = "cpu", *, data_dir=None,
                 progress: bool = True) -> None:
    """Train (or find in the cache) these stage-1 adapters, so that runs started in parallel afterwards never
    train the same adapter twice."""
    preset = get_preset(preset) if isinstance(preset, str) else preset
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
    extra, soup = _build(net, tokenizer, task, spec, rows, data_dir)
    feats = encode_splits(task, rows, tokenizer, preset)
    set_seed(seed)
    add_task_head(net, task, HEAD)
    params = _trainable(net, method)
    cfg = FitConfig(batch_size=preset.batch_size, eval_batch_size=preset.eval_batch_size,
                    warmup_ratio=preset.warmup_ratio, seed=seed, progress=progress, desc=f"{method} → {task.name}",
                    cpu_precision=preset.cpu_precision, **stage2_fit_settings(preset, method, k_shot, max_steps),
                    **(tracking or {}))
    start = time.perf_counter()
    result = fit(net, task, feats["train"], feats["validation"], tokenizer, cfg, params=params, head=HEAD,
                 extra_loss=extra, on_epoch=lambda: _omega_snapshot(net))
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
    if not force and (final / "metrics.json").is_file():  # folders appear complete or not at all: no lock needed
        return _reuse(final, spec, names_in)
    check_writable(final, "run folder")
    with folder_lock(final, "run folder"):
        if not force and (final / "metrics.json").is_file():  # another process finished it while we waited
            return _reuse(final, spec, names_in)
        task, rows = _target_data(spec, data_dir)
        if method == "adapter":
            return _adapter_baseline(task, spec, final, data_dir, progress)
        run = _fit(spec, task, rows, names_in, data_dir, None, progress, tracking)
        metrics = run.metrics()
        _write_run(final, spec, run.net, run.result, metrics)
    return RunResult(final, metrics)


def _reuse(final: Path, spec: TransferSpec, names_in: List[str]) -> RunResult:
    _check_same_run(final, spec)
    _check_same_sources(final, spec, names_in)
    return RunResult(final, read_json(final / "metrics.json"), reused=True)


def _build(net, tokenizer, task: Task, spec: TransferSpec, rows, data_dir):
    """Install the method's machinery into `net`; returns (extra loss fn or None, soup selection or None)."""
    m = spec.method
    if m in OMEGA_METHODS:
        build_scalearn(net, spec.sources, spec.source_refs, VARIANTS[m])
    elif m == "average":
        sl = build_scalearn(net, spec.sources, spec.source_refs, ScaLearnConfig(omega_dropout=0.0, init_std=0.0))
        sl.set_omega(torch.tensor(1.0 / len(spec.sources)), trainable=False)
    elif m == "adaptersoup":
        return None, _build_soup(net, tokenizer, task, spec, rows, data_dir)
    elif m == "adapterfusion":
        return _build_fusion(net, spec), None
    return None, None


def _build_soup(net, tokenizer, task, spec, rows, data_dir) -> dict:
    """AdapterSoup (baselines.py): rank the sources by sentence similarity to the target, average the top
    preset.soup_k with similarity weights, install the souped adapter as one fixed source (ω = 1)."""
    texts = {}
    for name, ref in zip(spec.sources, spec.source_refs):
        if not is_task_ref(name):
            raise ValueError(f"adaptersoup ranks sources by their training sentences, so each source must be a task "
                             f"name; {ref!r} is not")
        src_rows = (load_task_data(get_task(name), spec.preset, data_dir, as_source=True)["train"]
                    if name != task.name else rows["train"])
        texts[name] = task_sentences(src_rows)
    ranking = rank_by_similarity(task_sentences(rows["train"]), texts, spec.preset.max_length)
    chosen = soup_selection(ranking, spec.preset.soup_k, spec.preset.soup_weighting)
    refs = dict(zip(spec.sources, spec.source_refs))
    souped = soup_weights([source_weights(net, refs[n], n) for n, _ in chosen], [w for _, w in chosen])
    cfg = ScaLearnConfig(omega_shape="scalar", omega_dropout=0.0, init_std=0.0)
    sl = attach(net, ScaLearn(cfg, ["soup"], [[w] for w in souped], net.config.hidden_size))
    sl.set_omega(torch.tensor(1.0), trainable=False)
    return {"ranking": ranking, "chosen": [n for n, _ in chosen], "weights": dict(chosen),
            "weighting": spec.preset.soup_weighting}


def _fuse_sources(net, names: Sequence[str], refs: Sequence[str]):
    """Load the source adapters into `net` under their names; the Fuse block over them (fusion layer not added)."""
    from adapters.composition import Fuse

    for name, ref in zip(names, refs):
        load_adapter_into(net, ref, name)
    return Fuse(*names)


def _build_fusion(net, spec: TransferSpec):
    fuse = _fuse_sources(net, spec.sources, spec.source_refs)
    net.add_adapter_fusion(fuse, "dynamic")
    with quiet_activation():
        net.set_active_adapters(fuse)
        net.train_adapter_fusion(fuse)
    return net.get_fusion_regularization_loss  # the value regulariser, added to the loss before backward


def _trainable(net, method: str) -> List[torch.nn.Parameter]:
    """Freeze everything but what the method trains (ω / fusion / everything) and the new head."""
    if method == "finetune":
        for p in net.parameters():
            p.requires_grad_(True)
        return list(net.parameters())
    keep = set()
    if method in OMEGA_METHODS:
        keep.add(id(net.scalearn.omega.omega))
    if method == "adapterfusion":
        keep |= {id(p) for n, p in net.named_parameters() if "adapter_fusion_layer" in n}
    keep |= {id(p) for p in net.heads[HEAD].parameters()}
    params = []
    for p in net.parameters():
        p.requires_grad_(id(p) in keep)
        if id(p) in keep:
            params.append(p)
    return params


def transfer_parameters(net, method: str) -> int:
    """Parameters the method learns for transfer, the head excluded (paper's count)."""
    if method in OMEGA_METHODS:
        return net.scalearn.num_transfer_parameters()
    if method == "adapterfusion":
        return sum(p.numel() for n, p in net.named_parameters() if "adapter_fusion_layer" in n)
    if method == "finetune":
        return sum(p.numel() for n, p in net.named_parameters() if not n.startswith("heads."))
    return 0


def _omega_snapshot(net) -> dict:
    """ω per layer × source (mean over hidden units) flattened into history columns."""
    if not hasattr(net, "scalearn"):
        return {}
    values = net.scalearn.omega.layer_values().mean(-1)  # (L, S)
    return {f"omega/{l}/{s}": float(values[l, i]) for l in range(values.shape[0])
            for i, s in enumerate(net.scalearn.sources)}


def _metrics(task, spec, net, params, result, test, seconds, rows, soup) -> dict:
    main = main_metric(task)
    out = {"target": task.name, "method": spec.method, "seed": spec.seed, "k_shot": spec.k_shot,
           "sources": spec.sources, "metric": main, "test": test, "validation": result.best_validation,
           "test_metric": test[main], "validation_metric": result.best_validation.get(main),
           "transfer_params": transfer_parameters(net, spec.method),
           "trainable_params": sum(p.numel() for p in params), "best_epoch": result.best_epoch,
           "steps": result.steps, "step_budget": result.step_budget, "train_seconds": result.seconds,
           "wall_seconds": seconds,
           "rows": {k: len(v) for k, v in rows.items()}, "base": model_id(spec.preset.model, spec.preset.num_layers),
           "precision": precision_used(spec.preset.cpu_precision), "attention": attention_used(spec.preset.attention)}
    if soup:
        out["adaptersoup"] = soup
    return out


def omega_json(net) -> dict:
    """ω in a plain form: sources in order, layers, per layer × source (mean) and per hidden unit."""
    sl = net.scalearn
    values = sl.omega.layer_values()  # (L, S, d|1)
    return {"sources": sl.sources, "num_layers": values.shape[0], "omega_shape": sl.cfg.omega_shape,
            "share_layers": sl.cfg.share_layers, "per_layer_source": values.mean(-1).tolist(),
            "per_unit": values.tolist() if sl.cfg.omega_shape == "vector" else None}


def _write_run(final: Path, spec: TransferSpec, net, result, metrics: dict) -> None:
    with atomic_dir(final) as tmp:
        write_json(tmp / "config.json", _run_config(spec))
        write_text(tmp / "history.csv", history_csv(result.history))
        if hasattr(net, "scalearn"):
            save_omega(tmp / OMEGA_FILE, net.scalearn.omega.omega, net.scalearn.sources)
            write_json(tmp / "omega.json", omega_json(net))
        if spec.method == "adapterfusion":  # the fusion layers (query, key, value); the sources stay in their folders
            net.save_adapter_fusion(str(tmp / "fusion"), list(spec.sources), use_safetensors=True)
        if spec.method != "finetune":
            net.save_head(str(tmp / "head"), HEAD, use_safetensors=True)
        write_json(tmp / "metrics.json", metrics)


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

        with safe_open(str(folder / OMEGA_FILE), framework="pt") as fh:
            return {"omega": fh.get_tensor("omega"), "sources": json.loads(fh.metadata()["sources"])}
    if (folder / "omega.pt").is_file():
        return torch.load(folder / "omega.pt", map_location="cpu", weights_only=True)
    raise FileNotFoundError(f"{folder} has neither {OMEGA_FILE} nor omega.pt: the run folder is incomplete")


def _run_config(spec: TransferSpec) -> dict:
    """config.json: the spec, and a fingerprint of each source's weights (in the order of `sources`)."""
    return {**asdict(spec), "preset": asdict(spec.preset),
            "source_fingerprints": [source_fingerprint(r) for r in spec.source_refs]}


def _check_same_run(folder: Path, spec: TransferSpec) -> None:
    """A finished folder is reused only if it holds this very run (source folders may have moved)."""
    try:
        saved = read_json(folder / "config.json")
    except (OSError, ValueError) as err:
        raise ValueError(f"{folder} has metrics.json but no readable config.json ({err}): the run folder is "
                         f"corrupt; delete it or rerun with --force") from None
    want = json.loads(json.dumps(_run_config(spec)))  # tuples → lists, as read back from JSON
    # refs may move (weights are compared by _check_same_sources); data is compared when both sides know it
    # (folders written before it was kept, or no data here to hash: not)
    skip = {"source_refs", "source_fingerprints"} | ({"data"} if not (saved.get("data") and want.get("data")) else set())
    diff = sorted(k for k in set(want) | set(saved) if k not in skip and want.get(k) != saved.get(k))
    if diff:
        detail = "; ".join(f"{k}: saved {saved.get(k)!r}, asked {want.get(k)!r}" for k in diff)
        raise ValueError(f"{folder} already holds a finished run with other settings ({detail}); "
                         f"pass another --out, or --force to overwrite it")


def _current_fingerprint(ref: str, spec: TransferSpec) -> Optional[str]:
    """The fingerprint a source would have if the run were trained now; None for a task whose stage-1 adapter is
    not cached (it would be retrained from the same settings)."""
    if is_task_ref(ref):  # the folder _stage1_refs would resolve it to
        if task_name_of(ref) == spec.target:
            folder = source_dir(ref, spec.preset, own_adapter_seed(spec.preset, spec.seed), spec.k_shot, role="target")
        else:
            folder = source_dir(ref, spec.preset, 0)
        return weights_fingerprint(folder) if is_complete(folder) else None
    return source_fingerprint(str(Path(ref).expanduser()) if Path(ref).expanduser().is_dir() else ref)


def _check_same_sources(folder: Path, spec: TransferSpec, names_in: List[str]) -> None:
    """A finished run is reused only if every source still has the weights it was trained with."""
    if spec.method in ("head_only", "finetune", "adapter"):
        return
    saved = read_json(folder / "config.json").get("source_fingerprints")
    if not saved or len(saved) != len(names_in):
        raise ValueError(f"{folder} holds a finished run without a fingerprint of its sources' weights (written by an "
                         "older version), so it cannot be checked against the sources now; rerun with --force, or "
                         "pass another --out")
    for name, ref, then in zip(spec.sources, names_in, saved):
        now = _current_fingerprint(ref, spec)
        if now is not None and now != then:
            raise ValueError(f"{folder} holds a finished run whose source {name!r} ({ref}) had other weights "
                             f"(sha256 {then[:12]}… then, {now[:12]}… now); rerun with --force to retrain it on "
                             "the current sources, or pass another --out")


def _adapter_baseline(task: Task, spec: TransferSpec, final: Path, data_dir, progress) -> RunResult:
    """The Adapter row: the target's own stage-1 adapter trained with this seed (and k-shot data)."""
    src = train_source(task, spec.preset, data_dir=data_dir, seed=spec.seed, k_shot=spec.k_shot, progress=progress,
                       role="target")
    m = src.metrics
    net_params = _weights_numel(weights_file(src.path, "adapter"))
    head_params = _weights_numel(weights_file(src.path, "head"))
    metrics = {"target": task.name, "method": "adapter", "seed": spec.seed, "k_shot": spec.k_shot,
               "sources": [task.name], "metric": m["metric"], "test": m["test"], "validation": m["validation"],
               "test_metric": m["test"][m["metric"]], "validation_metric": m["validation"].get(m["metric"]),
               "transfer_params": net_params, "trainable_params": net_params + head_params, "best_epoch": m["best_epoch"],
               "steps": m["steps"], "step_budget": m.get("step_budget"), "train_seconds": m["seconds"], "wall_seconds": m["seconds"], "rows": m["rows"],
               "base": m["base"], "precision": m.get("precision"), "attention": m.get("attention"),
               "source_folder": str(src.path)}
    with atomic_dir(final) as tmp:
        write_json(tmp / "config.json", _run_config(spec))
        (tmp / "history.csv").write_bytes((src.path / "history.csv").read_bytes())
        write_json(tmp / "metrics.json", metrics)
    return RunResult(final, metrics)


def _weights_numel(path: Path) -> int:
    return sum(v.numel() for v in read_weights(path).values())


RELOADABLE = OMEGA_METHODS + ("average", "adapterfusion")


def load_run(folder) -> tuple:
    """Rebuild a saved run (a ScaLearn variant, `average` or `adapterfusion`): (model in eval mode, tokenizer, task, config)."""
    folder = Path(folder)
    if not (folder / "metrics.json").is_file():
        raise FileNotFoundError(f"{folder} is not a finished run folder (no metrics.json)")
    cfg = read_json(folder / "config.json")
    if cfg["method"] not in RELOADABLE:
        raise ValueError(f"load_run rebuilds {', '.join(RELOADABLE)} runs; {folder} is a {cfg['method']!r} run")
    preset = preset_from_dict(cfg["preset"])
    net, tokenizer = load_base(preset.model, preset.num_layers, preset.attention)
    if cfg["method"] == "adapterfusion":
        _load_fusion(net, folder, cfg)
    else:
        _load_omega(net, folder, cfg)
    net.load_head(str(folder / "head"), load_as=HEAD, use_safetensors=True)
    net.eval()
    return net, tokenizer, get_task(cfg["target"]), cfg


def _load_omega(net, folder: Path, cfg: dict) -> None:
    variant = VARIANTS.get(cfg["method"], ScaLearnConfig(omega_dropout=0.0, init_std=0.0))
    sl = build_scalearn(net, cfg["sources"], cfg["source_refs"], variant)
    saved = load_omega(folder)
    if saved["sources"] != sl.sources or saved["omega"].shape != sl.omega.omega.shape:
        raise ValueError(f"{folder}: ω does not match its config (sources {saved['sources']}, "
                         f"shape {tuple(saved['omega'].shape)}): the run folder is corrupt")
    sl.set_omega(saved["omega"])


def _load_fusion(net, folder: Path, cfg: dict) -> None:
    if not (folder / "fusion").is_dir():
        raise FileNotFoundError(f"{folder} has no fusion/ folder: it was written before fusion weights were saved; "
                                f"rerun it with --force")
    fuse = _fuse_sources(net, cfg["sources"], cfg["source_refs"])
    net.load_adapter_fusion(str(folder / "fusion"), with_head=False, use_safetensors=True)  # (None in 1.3.0)
    want = ",".join(cfg["sources"])
    if want not in net.adapters_config.fusions:
        raise ValueError(f"{folder}/fusion holds a fusion of {sorted(net.adapters_config.fusions)}, but the run's "
                         f"sources are {cfg['sources']}: the run folder is corrupt")
    with quiet_activation():
        net.set_active_adapters(fuse)
