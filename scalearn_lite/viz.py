"""ω tables (pandas) and seaborn plots: heatmaps per layer × source, ω over training, AdapterFusion
attention next to ω, a target × source matrix, the efficiency plot, the probing plots, and widgets.

Every plotting function returns its matplotlib Axes (or Figure) and takes `save=path` (.png or .svg).
ω is unconstrained (it may be negative), so ω heatmaps use a diverging palette centred at ω's initial value 2/S:
white = unchanged by training, red = grown, blue = shrunk (center=0.0 centres them at "adapter off" instead).
"""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Callable, Mapping, Optional, Sequence, Union

import numpy as np
import pandas as pd

OMEGA_CMAP = "vlag"  # seaborn's diverging blue-white-red: white is ω = 0
ATTENTION_CMAP = "Blues"  # attention is a probability in [0, 1]
RunLike = Union[str, Path, dict, object]


# ----------------------------------------------------------------------------------------- tables
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


# ------------------------------------------------------------------------------------------ plots
def _plt():
    import matplotlib.pyplot as plt

    return plt


def _save(fig, save) -> None:
    if save:
        Path(save).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(save, dpi=150, bbox_inches="tight")


def _new_ax(ax, size):
    if ax is not None:
        return ax
    _, ax = _plt().subplots(figsize=size)
    return ax


def _upright_cbar(ax, label: str) -> None:
    """Colour-bar label written upright (a rotated ω reads as a 3)."""
    cbar = ax.collections[0].colorbar if ax.collections else None
    if cbar is not None:
        cbar.ax.set_ylabel(label, rotation=0, labelpad=12, va="center")


def _layer_source_axes(ax, title: Optional[str], save):
    """Label a layer × source heatmap's axes, title it, save it; returns the Axes."""
    ax.set_xlabel("source adapter")
    ax.set_ylabel("layer")
    ax.tick_params(axis="x", rotation=30)
    ax.tick_params(axis="y", rotation=0)
    if title:
        ax.set_title(title)
    _save(ax.figure, save)
    return ax


def _variant_row(frames: Mapping[str, pd.DataFrame], draw: Callable, save, suptitle: Optional[str] = None):
    """One heatmap per variant side by side: draw(frame, ax, title, cbar) for each; the colour bar on the last."""
    from .config import PAPER_NAMES

    n, first = len(frames), next(iter(frames.values()))
    fig, axes = _plt().subplots(1, n, figsize=(0.6 + n * (0.9 + 1.0 * first.shape[1]), 1.2 + 0.45 * first.shape[0]),
                                squeeze=False)
    for i, (variant, frame) in enumerate(frames.items()):
        draw(frame, axes[0, i], PAPER_NAMES.get(variant, variant), i == n - 1)
        if i:
            axes[0, i].set_ylabel("")
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    _save(fig, save)
    return fig


def _vmax(*frames: pd.DataFrame) -> float:
    m = max(float(np.nanmax(np.abs(f.to_numpy(dtype=float)))) if f.size else 0.0 for f in frames)
    return m if m > 0 else 1.0


def omega_heatmap(frame: pd.DataFrame, ax=None, title: Optional[str] = "ω per layer × source",
                  vmax: Optional[float] = None, annot: bool = True, fmt: str = ".2f", cbar: bool = True,
                  center: Union[float, str] = "init", save=None):
    """Heatmap of an (L, S) ω frame, annotated with ω, diverging palette centred at `center` (range center ± vmax).

    center="init" (default): ω's initial value 2/S, so white = unchanged by training, red = grown, blue = shrunk;
    the range is then at least ±10% of 2/S, so that the init noise (std 0.001) does not fill the palette.
    A number centres it there (0.0: white = adapter off).
    """
    import seaborn as sns

    ax = _new_ax(ax, (1.2 + 1.1 * frame.shape[1], 0.9 + 0.45 * frame.shape[0]))
    c = _center(center, frame.shape[1])
    vmax = vmax or _range(c, center, frame - c)
    sns.heatmap(frame, ax=ax, cmap=OMEGA_CMAP, center=c, vmin=c - vmax, vmax=c + vmax, annot=annot, fmt=fmt,
                linewidths=0.5, linecolor="white", cbar=cbar)
    _upright_cbar(ax, "ω")
    return _layer_source_axes(ax, title, save)


MIN_INIT_RANGE = 0.1  # an ω heatmap centred at 2/S spans at least 2/S ± 10%


def _center(center: Union[float, str], num_sources: int) -> float:
    return init_value(num_sources) if center == "init" else float(center)


def _range(c: float, center: Union[float, str], *deviations: pd.DataFrame) -> float:
    """Half-width of an ω palette around c: the largest deviation, at least 10% of 2/S when centred at 2/S."""
    vmax = _vmax(*deviations)
    return max(vmax, MIN_INIT_RANGE * abs(c)) if center == "init" else vmax


def init_value(num_sources: int) -> float:
    """ω's initial mean, 2/S (ScaLearnConfig.init_scale / S)."""
    from .config import ScaLearnConfig

    return ScaLearnConfig().init_scale / num_sources


def variant_heatmaps(runs: Mapping[str, RunLike], save=None, annot: bool = True, center: Union[float, str] = "init"):
    """One ω heatmap per variant ({variant: run}), one shared colour scale (centred at 2/S: white = unchanged,
    or at `center`); returns the Figure."""
    frames = {v: omega_frame(r) for v, r in runs.items()}
    c = _center(center, next(iter(frames.values())).shape[1])
    vmax = _range(c, center, *(f - c for f in frames.values()))
    return _variant_row(frames, lambda f, ax, title, cbar: omega_heatmap(
        f, ax=ax, title=title, vmax=vmax, annot=annot, cbar=cbar, center=c), save)


MOVE_CMAP = "Greens"  # how far ω moved, |ω − 2/S| >= 0: white = not at all


def movement_heatmaps(runs: Mapping[str, RunLike], save=None, annot: bool = True):
    """Two rows of heatmaps per variant ({variant: run}), layer × source: the signed mean change of ω from 2/S over
    hidden units (diverging, white = unchanged on average) and the mean |ω − 2/S| (white = no unit moved); one range
    for all panels. Returns the Figure."""
    import seaborn as sns

    from .config import PAPER_NAMES

    changes = {v: omega_change(r) for v, r in runs.items()}
    first = next(iter(changes.values()))["mean"]
    n = len(changes)
    fig, axes = _plt().subplots(2, n, figsize=(0.6 + n * (0.9 + 1.0 * first.shape[1]), 2.0 + 0.9 * first.shape[0]),
                                squeeze=False)
    # one range for both rows (both are ω units): a signed mean of 0.09 beside units moved by 0.45 reads pale
    vmax = _vmax(*(f for c in changes.values() for f in (c["mean"], c["abs"])))
    for i, (variant, c) in enumerate(changes.items()):
        last = i == n - 1
        sns.heatmap(c["mean"], ax=axes[0, i], cmap=OMEGA_CMAP, center=0.0, vmin=-vmax, vmax=vmax, annot=annot,
                    fmt=".2f", linewidths=0.5, linecolor="white", cbar=last)
        sns.heatmap(c["abs"], ax=axes[1, i], cmap=MOVE_CMAP, vmin=0.0, vmax=vmax, annot=annot, fmt=".2f",
                    linewidths=0.5, linecolor="white", cbar=last)
        _layer_source_axes(axes[0, i], f"{PAPER_NAMES.get(variant, variant)}\nmean of ω − 2/S", None)
        _layer_source_axes(axes[1, i], "mean |ω − 2/S| over units", None)
        if i:
            axes[0, i].set_ylabel("")
            axes[1, i].set_ylabel("")
    fig.tight_layout()
    _save(fig, save)
    return fig


def _history(run: RunLike) -> pd.DataFrame:
    path = Path(run.path if hasattr(run, "path") else run)
    return pd.read_csv(path / "history.csv" if path.is_dir() else path)


def omega_over_training(run: RunLike, ax=None, layer: Optional[int] = None, save=None, what: str = "mean"):
    """ω per source after each epoch (history.csv): the mean over layers with a min–max band, or one `layer`.
    what="mean": ω (its mean over hidden units); what="abs": how far the units moved, mean |ω − 2/S|."""
    from matplotlib.ticker import MaxNLocator

    if what not in ("mean", "abs"):
        raise ValueError(f"what must be 'mean' or 'abs', got {what!r}")
    hist = _history(run)
    prefix = "omega/" if what == "mean" else "omega_abs/"
    cols = [c for c in hist.columns if c.startswith(prefix)]  # omega/<l>/<source>
    if not cols:
        raise ValueError(f"this run's history.csv has no {prefix} columns (only ScaLearn variants record ω; "
                         "mean |ω − 2/S| since the ω-learning budget)")
    ax = _new_ax(ax, (6, 3.6))
    sources = list(dict.fromkeys(c.split("/", 2)[2] for c in cols))
    epochs = hist["epoch"].to_numpy() + 1  # ω is recorded after each epoch
    for s in sources:
        per_layer = hist[[c for c in cols if c.split("/", 2)[2] == s]].to_numpy()  # (epochs, L)
        if layer is not None:
            ax.plot(epochs, hist[f"{prefix}{layer}/{s}"], marker="o", label=s)
            continue
        line, = ax.plot(epochs, per_layer.mean(1), marker="o", label=s)
        ax.fill_between(epochs, per_layer.min(1), per_layer.max(1), color=line.get_color(), alpha=0.15)
    if what == "mean":
        ax.axhline(2.0 / len(sources), color="grey", ls="--", lw=1, label="init 2/S")
    ax.axhline(0.0, color="black", lw=0.6)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    name = "ω" if what == "mean" else "mean |ω − 2/S|"
    ax.set_ylabel(name + (f" (layer {layer})" if layer is not None else " (mean over layers, band: min–max)"))
    ax.set_title("ω during training" if what == "mean" else "how far ω moved during training")
    ax.legend(fontsize="small", ncol=2)
    _save(ax.figure, save)
    return ax


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

    from .device import model_device, to_device
    from .models import encoder_layers
    from .train import cpu_bf16, frozen_linears_cast

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
    from .encoding import make_loader
    from .sources import encode_splits, load_task_data
    from .runs import load_run

    folder = Path(run.path if hasattr(run, "path") else run)
    net, tokenizer, task, cfg = load_run(folder)
    preset = preset_from_dict(cfg["preset"])
    rows = load_task_data(task, preset, data_dir, cfg.get("k_shot"))[split][:max_rows]
    feats = encode_splits(task, {split: rows}, tokenizer, preset)[split]
    return contribution_frame(net, make_loader(feats, task, tokenizer, preset.eval_batch_size), preset.cpu_precision)


def contribution_heatmap(frame: pd.DataFrame, ax=None, title: Optional[str] = "‖ω_i ⊙ A_i(h)‖ / ‖f + x‖",
                         vmax: Optional[float] = None, cbar: bool = True, save=None):
    """Heatmap of a contribution frame (L, S), sequential palette from 0 (adds nothing), annotated."""
    import seaborn as sns

    ax = _new_ax(ax, (1.2 + 1.1 * frame.shape[1], 0.9 + 0.45 * frame.shape[0]))
    sns.heatmap(frame, ax=ax, cmap="rocket_r", vmin=0.0, vmax=vmax or _vmax(frame), annot=True, fmt=".2f",
                linewidths=0.5, linecolor="white", cbar=cbar)
    return _layer_source_axes(ax, title, save)


def variant_contributions(frames: Mapping[str, pd.DataFrame], save=None):
    """One contribution heatmap per variant ({variant: frame}), one shared scale; returns the Figure."""
    vmax = _vmax(*frames.values())
    return _variant_row(frames, lambda f, ax, title, cbar: contribution_heatmap(f, ax=ax, title=title, vmax=vmax,
                                                                                cbar=cbar), save,
                        "what each source adds: ‖ω_i ⊙ A_i(h)‖ / ‖f + x‖, mean over validation tokens")


def variant_training(runs: Mapping[str, RunLike], save=None, what: str = "mean"):
    """ω over training (omega_over_training, `what` "mean" or "abs") for each variant side by side; returns the
    Figure."""
    from .config import PAPER_NAMES

    plt = _plt()
    fig, axes = plt.subplots(1, len(runs), figsize=(4.2 * len(runs), 3.4), squeeze=False, sharey=True)
    for i, (variant, run) in enumerate(runs.items()):
        ax = omega_over_training(run, ax=axes[0, i], what=what)
        ax.set_title(PAPER_NAMES.get(variant, variant))
        if i:
            ax.set_ylabel("")
            ax.get_legend().remove()
    fig.tight_layout()
    _save(fig, save)
    return fig


def _fusion_setup(model, fusion):
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
    import torch

    key = "output_adapter" if "output_adapter" in locations else next(iter(locations))
    att = torch.as_tensor(locations[key], dtype=torch.float32)  # (B, T, S)
    return (att * mask[..., None]).sum((0, 1))  # (S,) summed over real tokens


def compare_fusion_scalearn(fusion_frame: pd.DataFrame, omega: pd.DataFrame, save=None,
                            titles=("AdapterFusion attention", "ScaLearn ω")):
    """Side by side: fusion attention (softmax over sources, 0..1) and ω (unconstrained, diverging around its
    initial value 2/S: white = unchanged); a Figure."""
    import seaborn as sns

    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(2.5 + 2.2 * fusion_frame.shape[1], 1.2 + 0.45 * len(fusion_frame)))
    sns.heatmap(fusion_frame, ax=a, cmap=ATTENTION_CMAP, vmin=0, vmax=1, annot=True, fmt=".2f", linewidths=0.5,
                cbar_kws={"label": "attention"})
    a.set_title(titles[0])
    a.set_xlabel("source adapter")
    a.tick_params(axis="x", rotation=30)
    a.tick_params(axis="y", rotation=0)
    omega_heatmap(omega, ax=b, title=titles[1])
    b.set_ylabel("")
    fig.tight_layout()
    _save(fig, save)
    return fig


def target_source_matrix(runs_or_frame: Union[Mapping[str, RunLike], pd.DataFrame], ax=None,
                         title: str = "ω per target × source (mean over layers)",
                         columns: Optional[Sequence[str]] = None, center: Union[float, str] = "init", save=None):
    """Heatmap of targets × sources (each target's own adapter outlined), annotated with ω.

    center="init": each row coloured around its own start value 2/S (S = the row's sources, its non-empty cells):
    white = unchanged; the colour bar reads ω when every row has the same S, else ω − 2/S. A number: one centre.
    """
    import seaborn as sns
    from matplotlib.patches import Rectangle

    frame = (runs_or_frame if isinstance(runs_or_frame, pd.DataFrame)
             else target_source_frame(runs_or_frame, columns))
    ax = _new_ax(ax, (1.5 + 1.1 * frame.shape[1], 1.0 + 0.55 * frame.shape[0]))
    counts = frame.notna().sum(axis=1)
    if center == "init" and counts.nunique() > 1:  # rows start at different 2/S: colour the change
        start = pd.Series([init_value(int(n)) for n in counts], index=frame.index)
        shown, c, label = frame.sub(start, axis=0), 0.0, "ω − 2/S"
        vmax = max(_vmax(shown), MIN_INIT_RANGE * float(start.abs().min()))
    else:
        c = _center(center, int(counts.iloc[0]) if len(counts) else 1)
        shown, label = frame, "ω"
        vmax = _range(c, center, frame - c)
    sns.heatmap(shown, ax=ax, cmap=OMEGA_CMAP, center=c, vmin=c - vmax, vmax=c + vmax, annot=frame.to_numpy(),
                fmt=".2f", linewidths=0.5)
    _upright_cbar(ax, label)
    for i, target in enumerate(frame.index):
        if target in frame.columns:
            ax.add_patch(Rectangle((list(frame.columns).index(target), i), 1, 1, fill=False, lw=2, ec="black"))
    ax.set_xlabel("source adapter (outlined: the target's own)")
    ax.set_ylabel("target task")
    ax.tick_params(axis="x", rotation=30)
    ax.tick_params(axis="y", rotation=0)
    ax.set_title(title)
    _save(ax.figure, save)
    return ax


def efficiency_plot(results: pd.DataFrame, ax=None, metric: Optional[str] = None, save=None):
    """Test score (mean ± std over seeds, %) against transfer parameters (log x), one point per method.

    `results`: one row per run with columns name (or method), transfer_params, test_metric (in [0, 1]).
    Methods that learn no transfer parameters are drawn at x = 1 and labelled "(0)".
    """
    label = "name" if "name" in results else "method"
    g = results.groupby(label, sort=False)
    table = pd.DataFrame({"params": g["transfer_params"].first(), "mean": 100 * g["test_metric"].mean(),
                          "std": 100 * g["test_metric"].std(ddof=1).fillna(0.0)})
    ax = _new_ax(ax, (7, 4))
    markers = "oDs^vP*Xh<>p"
    for i, (name, row) in enumerate(table.iterrows()):
        x = max(float(row["params"]), 1.0)
        label = f"{name} ({int(row['params']):,})"
        ax.errorbar(x, row["mean"], yerr=row["std"], fmt=markers[i % len(markers)], capsize=3, ms=7, label=label)
    ax.legend(title="method (transfer parameters)", fontsize="small", bbox_to_anchor=(1.02, 1), loc="upper left")
    ax.set_xscale("log")
    ax.set_xlabel("transfer parameters (log scale, head excluded; 0 drawn at 1)")
    metric = metric or (results["metric"].iloc[0] if "metric" in results else "score")
    ax.set_ylabel(f"test {metric} (%)")
    ax.set_title("score against transfer parameters")
    ax.grid(True, which="major", alpha=0.3)
    _save(ax.figure, save)
    return ax


def few_shot_plot(results: pd.DataFrame, ax=None, metric: Optional[str] = None, save=None):
    """Test score against k (log x): mean ± std over seeds per method, each seed as a faint dot."""
    label = "name" if "name" in results else "method"
    ax = _new_ax(ax, (6.5, 4))
    groups = list(results.groupby(label, sort=False))
    for i, (name, part) in enumerate(groups):
        shift = 1.0 + 0.05 * (i - (len(groups) - 1) / 2)  # small offsets on the log axis keep error bars apart
        g = part.groupby("k_shot")["test_metric"]
        mean, std = 100 * g.mean(), 100 * g.std(ddof=1).fillna(0.0)
        bar = ax.errorbar(mean.index * shift, mean.values, yerr=std.values, marker="o", capsize=3, label=name)
        ax.scatter(part["k_shot"] * shift, 100 * part["test_metric"], color=bar[0].get_color(), alpha=0.3, s=14)
    ax.set_xscale("log")
    ks = sorted(results["k_shot"].unique())
    ax.set_xticks(ks)
    ax.set_xticklabels([str(k) for k in ks])
    ax.minorticks_off()
    metric = metric or (results["metric"].iloc[0] if "metric" in results else "score")
    ax.set_xlabel("k (target training examples)")
    ax.set_ylabel(f"test {metric} (%)")
    ax.set_title("few-shot transfer: mean ± std over seeds (dots: single seeds)")
    ax.legend(fontsize="small")
    _save(ax.figure, save)
    return ax


def probe_line(results: pd.DataFrame, ax=None, y: str = "test", metric: str = "score", save=None):
    """Score against a fixed ω on one source adapter (rows: source, omega, validation, test), one line per source."""
    ax = _new_ax(ax, (6, 3.6))
    for source, part in results.groupby("source", sort=False):
        part = part.sort_values("omega")
        ax.plot(part["omega"], 100 * part[y], marker="o", label=source)
    ax.set_xlabel("ω (fixed, same in every layer)")
    ax.set_ylabel(f"{y} {metric} (%)")
    ax.set_title("one frozen adapter scaled by ω, only a head trained")
    ax.legend(title="scaled adapter", fontsize="small")
    _save(ax.figure, save)
    return ax


def probe_grid(results: pd.DataFrame, ax=None, value: str = "test", select: str = "validation", names=None,
               metric: str = "score", save=None):
    """Heatmap of `value` over (ω_1, ω_2) (rows omega_1 upward, columns omega_2), the line ω_1 + ω_2 = 1 dashed,
    and the cell that is best on `select` (validation: how a setting is chosen) boxed in red."""
    import seaborn as sns
    from matplotlib.patches import Rectangle

    names = names or results.attrs.get("pair", ("source 1", "source 2"))
    grid = 100 * results.pivot(index="omega_1", columns="omega_2", values=value).sort_index().sort_index(axis=1)
    ax = _new_ax(ax, (1.5 + 0.8 * grid.shape[1], 1.0 + 0.6 * grid.shape[0]))
    sns.heatmap(grid, ax=ax, cmap="viridis", annot=True, fmt=".1f", cbar_kws={"label": f"{value} {metric} (%)"})
    ax.invert_yaxis()  # ω_1 grows upward
    rows, cols = grid.index.to_numpy(float), grid.columns.to_numpy(float)
    w1 = np.linspace(max(rows.min(), 1 - cols.max()), min(rows.max(), 1 - cols.min()), 200)
    if len(w1) and w1[0] <= w1[-1]:
        xs = np.interp(1 - w1, cols, np.arange(len(cols)) + 0.5)
        ys = np.interp(w1, rows, np.arange(len(rows)) + 0.5)
        ax.plot(xs, ys, color="white", ls="--", lw=2)
    chosen = results.pivot(index="omega_1", columns="omega_2", values=select).sort_index().sort_index(axis=1)
    i, j = np.unravel_index(np.nanargmax(chosen.to_numpy()), chosen.shape)
    ax.add_patch(Rectangle((j, i), 1, 1, fill=False, lw=2.5, ec="red"))
    ax.set_ylabel(f"ω₁ on {names[0]}")
    ax.set_xlabel(f"ω₂ on {names[1]}")
    ax.tick_params(axis="y", rotation=0)
    ax.set_title(f"two frozen adapters at fixed ω\n(dashed: ω₁ + ω₂ = 1, red: best on {select})")
    _save(ax.figure, save)
    return ax


# ---------------------------------------------------------------------------------------- widgets
def _widgets():
    try:
        import ipywidgets

        return ipywidgets
    except ImportError:
        print("ipywidgets is not installed: showing the static figures only")
        return None


def run_browser(runs: Mapping[str, Mapping[str, RunLike]]):
    """Dropdowns target / variant and a layer slider over {target: {variant: run}}: the ω heatmap and one layer's bars."""
    w = _widgets()
    if w is None:
        return None
    plt = _plt()
    targets = list(runs)
    target = w.Dropdown(options=targets, description="target")
    variant = w.Dropdown(options=list(runs[targets[0]]), description="variant")
    layer = w.IntSlider(min=0, max=len(omega_frame(next(iter(runs[targets[0]].values())))) - 1, description="layer")
    out = w.Output()

    def draw(*_):
        variant.options = list(runs[target.value])
        frame = omega_frame(runs[target.value][variant.value])
        layer.max = len(frame) - 1
        with out:
            out.clear_output(wait=True)
            fig, (a, b) = plt.subplots(1, 2, figsize=(10, 0.9 + 0.45 * len(frame) + 1))
            omega_heatmap(frame, ax=a, title=f"{variant.value} → {target.value}")
            a.axhline(layer.value, color="black", lw=2)
            frame.iloc[layer.value].plot.bar(ax=b, color="tab:blue")
            b.axhline(0, color="black", lw=0.6)
            b.set_title(f"layer {layer.value}")
            b.set_ylabel("ω")
            plt.show()

    for control in (target, variant, layer):
        control.observe(draw, names="value")
    draw()
    box = w.VBox([w.HBox([target, variant, layer]), out])
    box.redraw = draw  # for tests and scripts
    return box


def omega_sliders(scorer: Callable[[Optional[Sequence[float]]], float], sources: Sequence[str],
                  start: Optional[Sequence[float]] = None, lo: float = -1.0, hi: float = 2.0, step: float = 0.05,
                  metric: str = "metric"):
    """One slider per source sets ω_i (every layer) by hand; the label shows scorer(ω) live, on release."""
    w = _widgets()
    if w is None:
        return None
    start = list(start) if start is not None else [1.0 / len(sources)] * len(sources)
    sliders = [w.FloatSlider(value=v, min=lo, max=hi, step=step, description=s, continuous_update=False)
               for s, v in zip(sources, start)]
    label = w.HTML()

    def update(*_):
        values = [s.value for s in sliders]
        label.value = f"<b>{metric} = {100 * scorer(values):.2f}</b> at ω = {[round(v, 2) for v in values]}"

    for s in sliders:
        s.observe(update, names="value")
    update()
    box = w.VBox([*sliders, label])
    box.update, box.sliders, box.label = update, sliders, label
    return box
