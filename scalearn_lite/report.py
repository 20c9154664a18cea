"""The main jobs' results: statistics over seeds, the table in the paper's layout, the comparison with the paper's
averages, ω's tables (how far it moved, against the bound of each run), and the files and plots of a results folder.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import pandas as pd

from .files import write_text
from .methods import METHOD_NAMES, OMEGA_METHODS
from .tasks import get_task

PAPER_AVERAGES = {"glue": {"finetune": 83.93, "adapter": 83.83, "adapterfusion": 85.01, "scalearn": 85.36,
                           "scalearn_uniform": 85.02, "scalearn_pp": 85.35, "scalearn_uniform_pp": 85.14},
                  "superglue": {"finetune": 71.74, "adapter": 73.19, "adapterfusion": 73.60, "scalearn": 75.55,
                                "scalearn_uniform": 74.20, "scalearn_pp": 75.74, "scalearn_uniform_pp": 74.93}}


def summarize(runs: pd.DataFrame, column: str = "value") -> pd.DataFrame:
    """Per method and target: metric, mean, std (over seeds, ddof=1; 0 for one seed), seeds, transfer_params.

    `column`: "value" (the test score) or "validation" (the selection split: what choices are made on)."""
    stats = seed_stats(runs, ["method", "target"], column)
    rest = runs.groupby(["method", "target"], sort=False).agg(metric=("metric", "first"),
                                                              transfer_params=("transfer_params", "max"))
    return stats.join(rest)[["metric", "mean", "std", "seeds", "transfer_params"]].reset_index()


def seed_stats(runs: pd.DataFrame, by: Sequence[str], column: str) -> pd.DataFrame:
    """Per group of `by`: mean and std over seeds (ddof=1; 0 for a single seed) of `column`, and the number of
    seeds. The one place a table's "mean ± std over seeds" is computed (demo, reproduce and the notebooks)."""
    g = runs.groupby(list(by), sort=False)
    out = pd.DataFrame({"mean": g[column].mean(), "std": g[column].std(ddof=1), "seeds": g["seed"].nunique()})
    out["std"] = out["std"].fillna(0.0)  # one seed: no spread
    return out


def paper_table(summary: pd.DataFrame, targets: Sequence[str], methods: Sequence[str],
                constant: Optional[Dict[str, Optional[float]]] = None) -> str:
    """Markdown table: rows = methods, columns = targets (metric) + Avg + transfer params.

    `constant` (target → score or None, see constant_scores) adds a last row: the best constant prediction.
    """
    metric = {t: summary.loc[summary.target == t, "metric"].iloc[0] for t in targets if (summary.target == t).any()}
    head = "| method | " + " | ".join(f"{t} ({metric.get(t, '')})" for t in targets) + " | Avg | transfer params |"
    lines = [head, "|" + "---|" * (len(targets) + 3)]
    for m in methods:
        sub = summary[summary.method == m].set_index("target")
        if sub.empty:
            continue
        cells = [f"{sub.at[t, 'mean']:.2f} ± {sub.at[t, 'std']:.2f}" if t in sub.index else "–" for t in targets]
        avg = np.mean([sub.at[t, "mean"] for t in targets if t in sub.index])
        params = int(sub["transfer_params"].max())
        lines.append(f"| {METHOD_NAMES[m]} | " + " | ".join(cells) + f" | {avg:.2f} | {params:,} |")
    if constant:
        values = [constant.get(t) for t in targets]
        cells = ["–" if v is None else f"{v:.2f}" for v in values]
        avg = "–" if None in values else f"{np.mean(values):.2f}"
        lines.append("| *best constant prediction* | " + " | ".join(cells) + f" | {avg} | – |")
    return "\n".join(lines)


def constant_scores(targets: Sequence[str], preset, data_dir=None, split: str = "test") -> Dict[str, Optional[float]]:
    """Per target, in %: the best constant prediction's score on the rows the runs are scored on (`split`: test
    or validation; metrics.best_constant: majority class, "always yes" for MultiRC's F1a; None for regression)."""
    from .metrics import best_constant
    from .data import load_task_data

    out = {}
    for t in targets:
        task = get_task(t)
        score = best_constant(task, [r["label"] for r in load_task_data(task, preset, data_dir)[split]])
        out[task.name] = None if score is None else 100.0 * score
    return out


def paper_comparison(summary: pd.DataFrame, targets: Sequence[str], methods: Sequence[str], benchmark: str) -> str:
    """Markdown: our average over `targets` next to the paper's benchmark average (roberta-base, all tasks)."""
    paper = PAPER_AVERAGES[benchmark]
    lines = [f"Our average over {', '.join(targets)} next to the paper's {benchmark} average (roberta-base, every "
             f"task of the benchmark, as the paper reports it); compare the order of the methods, not the absolute "
             "numbers.", "",
             "| method | ours (avg) | paper (avg) |", "|---|---|---|"]
    for m in methods:
        sub = summary[(summary.method == m) & summary.target.isin(targets)]
        ours = f"{sub['mean'].mean():.2f}" if not sub.empty else "–"
        lines.append(f"| {METHOD_NAMES[m]} | {ours} | {paper[m]:.2f} |" if m in paper else f"| {METHOD_NAMES[m]} | {ours} | – |")
    return "\n".join(lines)


def omega_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Every ScaLearn-variant run's ω, one row per layer × source (analysis.omega_stats): target, method, seed, layer,
    source, mean, min, max (over hidden units) and mean_abs_change (mean |ω − 2/S|)."""
    from .analysis import omega_stats

    frames = [omega_stats(r.path).assign(target=r.target, method=r.method, seed=r.seed)
              for r in runs.itertuples() if r.method in OMEGA_METHODS]
    cols = ["target", "method", "seed", "layer", "source", "mean", "min", "max", "mean_abs_change"]
    return pd.concat(frames, ignore_index=True)[cols] if frames else pd.DataFrame(columns=cols)


def omega_travel(omega: pd.DataFrame) -> pd.DataFrame:
    """Per target × method × seed: the largest mean |ω − 2/S| over layer × source (how far ω moved in that run)."""
    return omega.groupby(["target", "method", "seed"], sort=False)["mean_abs_change"].max().rename(
        "max_mean_abs_change").reset_index()


def travel_table(omega: pd.DataFrame, bounds: Dict[str, float]) -> str:
    """Markdown: per method × target, how far ω moved in each seed (the largest mean |ω − 2/S| over layer ×
    source) next to the bound lr·Σ(schedule) (`bounds`: method → metrics.json's omega_travel_bound)."""
    travel = omega_travel(omega)
    if travel.empty:
        return ""
    seeds = sorted(travel.seed.unique())
    lines = ["| method | target | " + " | ".join(f"seed {s}" for s in seeds) + " | bound lr·Σ(schedule) |",
             "|---|---|" + "---|" * (len(seeds) + 1)]
    for (method, target), g in travel.groupby(["method", "target"], sort=False):
        cells = [f"{v:.3f}" for v in g.set_index("seed").reindex(seeds)["max_mean_abs_change"]]
        bound = bounds.get(method)
        lines.append(f"| {METHOD_NAMES[method]} | {target} | " + " | ".join(cells)
                     + f" | {'–' if bound is None else f'{bound:.3f}'} |")
    return "\n".join(lines)


def write_results(out: Path, runs: pd.DataFrame, summary: pd.DataFrame, table: str, header: str,
                  omega: Optional[pd.DataFrame] = None) -> None:
    """results.csv (one row per method × target), runs.csv (one per run), omega.csv (ω of every ScaLearn-variant
    run per layer × source) and results.md."""
    out.mkdir(parents=True, exist_ok=True)
    cols = ["method", "target", "metric", "mean", "std", "seeds", "transfer_params"]
    write_text(out / "results.csv", summary[cols].to_csv(index=False, float_format="%.4f"))
    write_text(out / "runs.csv", runs.to_csv(index=False, float_format="%.4f"))
    omega = omega_table(runs) if omega is None else omega
    write_text(out / "omega.csv", omega.to_csv(index=False, float_format="%.5f"))
    write_text(out / "results.md", f"{header}\n\n{table}\n")


def write_plots(out: Path, runs: pd.DataFrame, targets: Sequence[str], data_dir=None) -> List[Path]:
    """Per target (seed 0, each ScaLearn variant): ω heatmaps centred at 2/S, what each source adds
    (contributions on validation), ω over training; and the parameter-efficiency plot; as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from . import analysis, viz

    paths = []
    for target in targets:
        first = runs[(runs.target == target) & (runs.seed == runs.seed.min()) & runs.method.isin(OMEGA_METHODS)]
        if first.empty:
            continue
        folders = {r.method: r.path for r in first.itertuples()}
        p = out / f"omega_heatmaps_{target}.png"  # centred at the initial 2/S: white = unchanged
        viz.variant_heatmaps(folders, save=p)
        paths.append(p)
        p = out / f"contributions_{target}.png"
        viz.variant_contributions({m: analysis.run_contributions(f, data_dir=data_dir) for m, f in folders.items()}, save=p)
        paths.append(p)
        p = out / f"omega_movement_{target}.png"  # signed mean change and mean |ω − 2/S| per layer × source
        viz.movement_heatmaps(folders, save=p)
        paths.append(p)
        for what, name in (("mean", "omega_training"), ("abs", "omega_movement_training")):
            p = out / f"{name}_{target}.png"
            viz.variant_training(folders, save=p, what=what)
            paths.append(p)
        plt.close("all")
    # one point per method: the average over targets, its spread over seeds
    per_seed = runs.groupby(["method", "seed"], sort=False).agg(value=("value", "mean"),
                                                                transfer_params=("transfer_params", "max"))
    points = per_seed.reset_index().assign(test_metric=lambda d: d.value / 100,
                                           name=lambda d: d.method.map(METHOD_NAMES))
    p = out / "efficiency.png"
    viz.efficiency_plot(points, metric="score averaged over targets", save=p)
    paths.append(p)
    return paths
