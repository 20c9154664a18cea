"""Seaborn plots of ω and its kin: heatmaps per layer × source, how far ω moved, ω over training, what each source
adds, AdapterFusion attention next to ω, a target × source matrix, the efficiency, few-shot and probing plots.
The numbers they draw come from analysis.py; the widgets are in widgets.py.

Every plotting function returns its matplotlib Axes (or Figure) and takes `save=path` (.png or .svg).
ω is unconstrained (it may be negative), so ω heatmaps use a diverging palette centred at ω's initial value 2/S:
white = unchanged by training, red = grown, blue = shrunk (center=0.0 centres them at "adapter off" instead).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence, Union

import numpy as np
import pandas as pd

from .analysis import RunLike, init_value, omega_change, omega_frame, target_source_frame

OMEGA_CMAP = "vlag"  # seaborn's diverging blue-white-red: white is ω = 0
ATTENTION_CMAP = "Blues"  # attention is a probability in [0, 1]


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
