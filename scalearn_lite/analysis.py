"""Numbers that explain a ScaLearn run, for the plots of viz.py: ω tables read from a run folder or a model (ω per
layer × source, its spread and movement from 2/S, a target × source matrix), and what needs the model run on
batches: each source's contribution to a layer's sum, AdapterFusion attention, and the ω scorer of notebook 04
that sets ω by hand and scores the result.

Tables are pandas frames with index "layer 0".. and the sources (in ω's order) as columns.
"""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import List, Mapping, Optional, Sequence, Union

import numpy as np
import pandas as pd

RunLike = Union[str, Path, dict, object]  # a run folder, its omega.json, a RunResult, an ω record or a model


# ------------------------------------------------------------------------------------------ ω tables
def _omega_record(run: RunLike) -> dict:
    """omega.json's content for a run folder / RunResult / omega.json path / dict / model with ScaLearn."""
    if isinstance(run, dict):
        return run
    if hasattr(run, "path") and not hasattr(run, "scalearn"):  # a RunResult
        run = run.path
    if isinstance(run, (str, Path)):
        path = Path(run)
        path = path / "omega.json" if path.is_dir() else path
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: only ScaLearn variants (and 'average') write omega.json")
        return json.loads(path.read_text())
    from .runs import omega_json

    if hasattr(run, "scalearn"):  # a model with ScaLearn attached
        return omega_json(run)
    if hasattr(run, "omega") and hasattr(run, "sources"):  # a ScaLearn module
        return omega_json(SimpleNamespace(scalearn=run))
    raise TypeError(f"cannot read ω from {type(run).__name__}: give a run folder, RunResult, dict or model")


def _layer_index(n: int) -> pd.Index:
    return pd.Index([f"layer {l}" for l in range(n)], name="layer")


def init_value(num_sources: int) -> float:
    """ω's initial mean, 2/S (ScaLearnConfig.init_scale / S)."""
    from .config import ScaLearnConfig

    return ScaLearnConfig().init_scale / num_sources


def omega_frame(run_or_model: RunLike) -> pd.DataFrame:
    """ω per layer × source, (L, S): index "layer 0".., columns the sources in order; mean over hidden units."""
    rec = _omega_record(run_or_model)
    values = np.asarray(rec["per_layer_source"], dtype=float)  # (L, S)
    return pd.DataFrame(values, index=_layer_index(values.shape[0]),
                        columns=pd.Index(rec["sources"], name="source"))


def omega_spread(run_or_model: RunLike) -> pd.DataFrame:
    """Std of ω over hidden units per layer × source, (L, S) (population std; 0 for the scalar variants)."""
    rec = _omega_record(run_or_model)
    if rec.get("per_unit") is None:
        spread = np.zeros_like(np.asarray(rec["per_layer_source"], dtype=float))
    else:
        spread = np.asarray(rec["per_unit"], dtype=float).std(axis=-1)  # (L, S, d) → (L, S)
    return pd.DataFrame(spread, index=_layer_index(spread.shape[0]), columns=pd.Index(rec["sources"], name="source"))


def _per_unit(rec: dict) -> np.ndarray:
    """ω of a record per layer × source × hidden unit, (L, S, d), or (L, S, 1) for the scalar variants."""
    if rec.get("per_unit") is not None:
        return np.asarray(rec["per_unit"], dtype=float)  # (L, S, d)
    return np.asarray(rec["per_layer_source"], dtype=float)[..., None]  # (L, S, 1)


def omega_change(run_or_model: RunLike) -> dict:
    """How far ω moved from its start 2/S, per layer × source, as two (L, S) frames: "mean" = the signed mean
    change over hidden units (what a heatmap of ω shows), "abs" = the mean |ω − 2/S| over hidden units (how far the
    units moved: a vector ω can move per unit while its mean stays at 2/S). Scalar ω: both are ω − 2/S, |ω − 2/S|."""
    rec = _omega_record(run_or_model)
    delta = _per_unit(rec) - init_value(len(rec["sources"]))  # (L, S, d|1)
    columns = pd.Index(rec["sources"], name="source")
    return {name: pd.DataFrame(values, index=_layer_index(values.shape[0]), columns=columns)
            for name, values in (("mean", delta.mean(-1)), ("abs", np.abs(delta).mean(-1)))}  # (L, S) each


def omega_stats(run_or_model: RunLike) -> pd.DataFrame:
    """One row per layer × source: ω's mean, min and max over hidden units and mean_abs_change = mean |ω − 2/S|."""
    rec = _omega_record(run_or_model)
    values = _per_unit(rec)  # (L, S, d|1)
    change = omega_change(rec)["abs"].to_numpy()
    rows = [{"layer": l, "source": s, "mean": values[l, i].mean(), "min": values[l, i].min(),
             "max": values[l, i].max(), "mean_abs_change": change[l, i]}
            for l in range(values.shape[0]) for i, s in enumerate(rec["sources"])]
    return pd.DataFrame(rows)


def target_source_frame(runs: Mapping[str, RunLike], columns: Optional[Sequence[str]] = None) -> pd.DataFrame:
    """targets × sources: each run's ω averaged over layers (and units); NaN where a source was not used."""
    rows = {target: omega_frame(run).mean(axis=0) for target, run in runs.items()}
    frame = pd.DataFrame(rows).T
    if columns is not None:
        frame = frame.reindex(columns=[c for c in columns if c in frame.columns])
    frame.index.name, frame.columns.name = "target", "source"
    return frame


# ---------------------------------------------------------------------------- the model run on batches
def contribution_frame(model, batches, cpu_precision: str = "fp32") -> pd.DataFrame:
    """What each source adds, (L, S): per layer and source, the mean over real (unpadded) tokens of
    ‖ω_i ⊙ A_i(h)‖ / ‖f + x‖ (norms over hidden units), ω without dropout, the model in eval mode.
    `cpu_precision` "bf16": on CPU the model runs under bf16 autocast, as the run was trained and scored
    (norms are taken in fp32 either way).

    ω alone hides that source adapters' outputs differ in size, and for vector ω the layer mean hides per-unit
    movement; this ratio is the share of the layer's pre-LayerNorm sum each source actually contributes.
    `batches`: dicts of input_ids / attention_mask (/ token_type_ids) tensors, e.g. a DataLoader over validation;
    multiple-choice batches (B, C, T) count every choice's sequence, as the encoder sees them (B·C, T).
    """
    import torch

    from .device import cpu_bf16, frozen_linears_cast, model_device
    from .models import encoder_layers

    sl = model.scalearn
    where = model_device(model)  # the inputs go to the model's device
    device = where.type
    outputs = [layer.output for layer in encoder_layers(model)]
    sums = torch.zeros(len(outputs), len(sl.sources), dtype=torch.float64)  # (L, S)
    count, mask = 0, None

    def hook(l):
        def fn(module, args, _out):
            ups, residual = module.parts(*args)  # (S, B, T, d), (B, T, d)
            ratio = ups.float().norm(dim=-1) / residual.float().norm(dim=-1).clamp(min=1e-12)  # (S, B, T)
            sums[l] += (ratio * mask).sum((1, 2)).double().cpu()  # (S,) summed over real tokens
        return fn

    was_training = model.training
    model.eval()
    handles = [o.register_forward_hook(hook(l)) for l, o in enumerate(outputs)]
    try:
        with torch.no_grad(), frozen_linears_cast(model, device, cpu_precision), \
                torch.autocast("cpu", dtype=torch.bfloat16, enabled=cpu_bf16(device, cpu_precision)):
            for batch in batches:
                inputs = {k: v.reshape(-1, v.shape[-1]).to(where) for k, v in batch.items()  # (B, C, T) → (B·C, T)
                          if k in ("input_ids", "attention_mask", "token_type_ids")}
                mask = inputs["attention_mask"].float()  # (B, T), or (B·C, T) for choices
                model.base_model(**inputs)
                count += float(mask.sum())
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    values = (sums / max(count, 1)).numpy()
    return pd.DataFrame(values, index=_layer_index(values.shape[0]), columns=pd.Index(sl.sources, name="source"))


def run_contributions(run: RunLike, split: str = "validation", max_rows: int = 200, data_dir=None) -> pd.DataFrame:
    """contribution_frame of a saved ScaLearn run (load_run) over up to `max_rows` rows of its `split`, in the
    precision the run was trained in (its preset's cpu_precision)."""
    from .config import preset_from_dict
    from .data import load_task_data
    from .encoding import encode_splits, make_loader
    from .runs import load_run

    folder = Path(run.path if hasattr(run, "path") else run)
    net, tokenizer, task, cfg = load_run(folder)
    preset = preset_from_dict(cfg["preset"])
    rows = load_task_data(task, preset, data_dir, cfg.get("k_shot"))[split][:max_rows]
    feats = encode_splits(task, {split: rows}, tokenizer, preset)[split]
    return contribution_frame(net, make_loader(feats, task, tokenizer, preset.eval_batch_size), preset.cpu_precision)


def _fusion_setup(model, fusion):
    """The Fuse composition to read: `fusion` (a Fuse or "a,b,c"), else the model's active one, unwrapped."""
    from adapters.composition import Fuse

    setup = fusion or model.active_adapters
    if isinstance(setup, str):
        setup = Fuse(*setup.split(","))
    while setup is not None and not isinstance(setup, Fuse) and len(setup.children) == 1:
        setup = setup.children[0]  # unwrap Stack(Fuse(...))
    if not isinstance(setup, Fuse):
        raise ValueError(f"the model has no active AdapterFusion (active: {model.active_adapters})")
    return setup


def fusion_attention_frame(model, loader_or_batch, fusion=None, head: Optional[str] = None) -> pd.DataFrame:
    """AdapterFusion attention per layer × source, (L, S): averaged over every non-padding token of the batches."""
    import torch

    from .device import model_device

    setup = _fusion_setup(model, fusion)
    where = model_device(model)  # the inputs go to the model's device
    batches = [loader_or_batch] if isinstance(loader_or_batch, Mapping) else loader_or_batch
    total, count = None, 0.0
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for batch in batches:
            inputs = {k: v.to(where) for k, v in batch.items()
                      if k in ("input_ids", "attention_mask", "token_type_ids")}
            out = model(**inputs, output_adapter_fusion_attentions=True, **({"head": head} if head else {}))
            per_layer = out["adapter_fusion_attentions"][setup.name]  # {layer: {location: (B, T, S)}}
            mask = batch["attention_mask"].float().cpu()  # (B, T) on the CPU, where adapters returns the attention
            sums = torch.stack([_location_mean(per_layer[l], mask) for l in sorted(per_layer)]).float().cpu()  # (L, S)
            total = sums if total is None else total + sums
            count += float(mask.sum())
    model.train(was_training)
    values = (total / count).numpy()
    return pd.DataFrame(values, index=_layer_index(values.shape[0]),
                        columns=pd.Index(list(setup.children), name="source"))


def _location_mean(locations: dict, mask):
    """One layer's fusion attention (B, T, S) summed over the real tokens of `mask` (B, T): (S,)."""
    import torch

    key = "output_adapter" if "output_adapter" in locations else next(iter(locations))
    att = torch.as_tensor(locations[key], dtype=torch.float32)  # (B, T, S)
    return (att * mask[..., None]).sum((0, 1))  # (S,) summed over real tokens


def batches(run_, split: str = "validation", batch_size: int = 32, max_rows: Optional[int] = None):
    """The batches of an in-memory run's encoded split (for fusion_attention_frame), on its model's device."""
    from .device import model_device, to_device
    from .encoding import make_loader

    feats = run_.feats[split][:max_rows] if max_rows else run_.feats[split]
    where = model_device(run_.net)
    for batch in make_loader(feats, run_.task, run_.tokenizer, batch_size):
        yield to_device(batch, where)


# ------------------------------------------------------------------------------------- ω set by hand
class OmegaScorer:
    """A saved ω run, reloaded: `scorer([ω_1..ω_S])` sets ω_i in every layer and unit and returns the metric.

    `scorer(None)` restores and scores the learned ω. Used by the ω sliders of notebook 04.
    """

    def __init__(self, folder, split: str = "validation", max_rows: Optional[int] = None, data_dir=None,
                 device=None):
        from . import data as data_mod
        from .config import preset_from_dict
        from .encoding import encode
        from .metrics import main_metric
        from .runs import load_run

        self.net, self.tokenizer, task, cfg = load_run(folder, device)  # device None: CUDA when there is one
        preset = preset_from_dict(cfg["preset"])
        self.task = data_mod.resolve_labels(task, data_dir)
        rows = data_mod.load_task_data(self.task, preset, data_dir, k_shot=cfg["k_shot"], seed=cfg["seed"])[split]
        self.feats = encode(self.task, rows[:max_rows] if max_rows else rows, self.tokenizer,
                            preset.length_for(self.task.name))
        self.sources = list(self.net.scalearn.sources)
        self.learned = self.net.scalearn.omega.weight.detach().clone()  # (L|1, S, d|1)
        self.metric = main_metric(self.task)

    def learned_per_source(self) -> List[float]:
        """The learned ω averaged over layers and units, one value per source."""
        return self.learned.mean(dim=(0, 2)).tolist()

    def __call__(self, omega: Optional[Sequence[float]] = None) -> float:
        import torch

        from .methods import HEAD
        from .train import evaluate

        sl = self.net.scalearn
        sl.set_omega(self.learned if omega is None else torch.tensor([float(w) for w in omega]).view(-1, 1))
        try:
            return evaluate(self.net, self.task, self.feats, self.tokenizer, HEAD)[self.metric]
        finally:
            sl.set_omega(self.learned)

    def table(self) -> pd.DataFrame:
        """The metric under hand-made ω settings: learned, uniform 2/S (ω's start), uniform 1/S, zero, and each source
        alone (one-hot). The head is the one trained with the learned ω for every row."""
        S = len(self.sources)
        settings = {"learned ω": None, "uniform 2/S (the start)": [2.0 / S] * S, "uniform 1/S": [1.0 / S] * S,
                    "zero (head only)": [0.0] * S}
        settings.update({f"only {s} (one-hot)": [float(i == k) for i in range(S)] for k, s in enumerate(self.sources)})
        rows = [{"ω setting": name, self.metric: 100 * self(w)} for name, w in settings.items()]
        return pd.DataFrame(rows).set_index("ω setting")
