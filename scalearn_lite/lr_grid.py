"""`scalearn-lite lr-grid`: pick each method's learning rate the same way, on validation loss.

A small budget (the cpu preset: 48 optimiser steps on the target, the demo preset 24) cannot use the paper's rates
unchanged, and raising some of them and not others favours those methods. This command gives every method the same
tuning budget: its paper rate times each factor of one grid (default 1, 3, 10), seed 0, the preset's rows; the rate
with the lowest validation loss wins (loss, not accuracy: a diverged model that predicts the majority class can tie
on accuracy). Losses of different tasks (cross-entropy, MSE) are made comparable by dividing each by that task's
best loss over the grid; the score of a rate is the mean of these ratios. Stage 1 goes first and is scored on every
task it trains an adapter for (targets and sources: one stage-1 rate trains them all); then each transfer group, on
the targets, over sources trained at the chosen stage-1 rate. The four ScaLearn variants share ScaLearn's rate (as
in the paper), and so do the head-only baselines (average, head_only, adaptersoup), which train the same new head.
The "omega" group picks ω's own rate (omega_lr, the head keeping transfer_lr) on all four variants at once: each
(target, variant) pair counts as one task of the mean, so one rate serves the four as in the paper.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence

from .config import PRESETS, Preset
from .methods import OMEGA_METHODS
from .sources import train_source
from .tasks import get_task
from .transfer import transfer

# group → (preset field, method trained for it; "source" / "target" = stage 1 in that role)
GROUPS = {
    "source": ("source_lr", "source"),  # the zoo adapters of the task sources (expensive: retrains them)
    "target": ("target_lr", "target"),  # the target's own adapter on the target rows (the Adapter row)
    "scalearn": ("transfer_lr", "scalearn"),
    "adapterfusion": ("fusion_lr", "adapterfusion"),
    "finetune": ("finetune_lr", "finetune"),
    "omega": ("omega_lr", OMEGA_METHODS),  # ω's own rate, the head at transfer_lr; scored on all four variants
}
PAPER = PRESETS["paper"]


def _task_names(sources: Sequence[str]) -> List[str]:
    """The sources that are task names (folders and hub ids are not trained here)."""
    names = []
    for s in sources:
        try:
            names.append(get_task(s).name)
        except ValueError:
            continue
    return names


def _paper_rate(field: str) -> float:
    """The paper's rate behind a preset field (ω's: the transfer rate, the paper has one rate for ω and head)."""
    return PAPER.omega_rate() if field == "omega_lr" else getattr(PAPER, field)


def _score(group: str, preset: Preset, target: str, sources: Sequence[str], out: Path, data_dir, progress,
           method: Optional[str] = None) -> dict:
    """Validation loss and headline metric of one run (seed 0)."""
    method = method or GROUPS[group][1]
    if method in ("source", "target"):
        m = train_source(target, preset, data_dir=data_dir, out=out, progress=progress, role=method).metrics
        return {"validation_loss": m["validation"]["loss"], "validation_metric": m["validation"][m["metric"]],
                "metric": m["metric"]}
    m = transfer(target, sources, method, preset, data_dir=data_dir, out=out, progress=progress).metrics
    return {"validation_loss": m["validation"]["loss"], "validation_metric": m["validation_metric"],
            "metric": m["metric"]}


def lr_grid(preset: Preset, targets: Sequence[str], sources: Sequence[str], groups: Sequence[str] = tuple(GROUPS),
            factors: Sequence[float] = (1, 3, 10), *, data_dir=None, out: Path, progress: bool = True) -> dict:
    """Per group: every factor's runs and the chosen rate; `preset` comes back with the chosen rates."""
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        raise ValueError(f"unknown group(s) {unknown}; choose from {', '.join(GROUPS)}")
    result = {}
    for group in (g for g in GROUPS if g in groups):  # stage 1 first: the sources depend on its rate
        field = GROUPS[group][0]
        names = [t for t in _task_names(sources) if t not in targets] if group == "source" else list(targets)
        methods = GROUPS[group][1]
        # task key → (task, method): one rate for several methods makes each (target, method) a task of the mean
        jobs = ({f"{t}:{m}": (t, m) for t in names for m in methods} if isinstance(methods, tuple)
                else {t: (t, None) for t in names})
        tasks = list(jobs)
        rows = []
        for factor in factors:
            lr = float(f"{_paper_rate(field) * factor:.3g}")
            trial = preset.with_(**{field: lr})
            runs = {key: _score(group, trial, t, sources, out / group / f"x{factor:g}" / key.replace(":", "-"),
                                data_dir, progress, m)
                    for key, (t, m) in jobs.items()}
            rows.append({"factor": factor, "lr": lr, "runs": runs})
        for r in rows:  # each task's loss over its best loss in the grid, averaged over tasks
            r["relative_loss"] = sum(r["runs"][t]["validation_loss"] / min(x["runs"][t]["validation_loss"]
                                                                            for x in rows) for t in tasks) / len(tasks)
        best = min(rows, key=lambda r: r["relative_loss"])
        preset = preset.with_(**{field: best["lr"]})
        result[group] = {"field": field, "paper_lr": _paper_rate(field), "rows": rows, "chosen_lr": best["lr"]}
    return {"groups": result, "preset": preset}


def format_table(groups: Dict[str, dict]) -> str:
    """Markdown: one row per group × factor, validation loss (metric) per task, the chosen rate marked."""
    tasks = list(dict.fromkeys(t for g in groups.values() for r in g["rows"] for t in r["runs"]))
    lines = ["| group | factor | lr | " + " | ".join(f"{t} val loss (metric)" for t in tasks)
             + " | relative loss |", "|---|---|---|" + "---|" * len(tasks) + "---|"]
    for name, g in groups.items():
        for r in g["rows"]:
            cells = [f"{r['runs'][t]['validation_loss']:.4f} ({100 * r['runs'][t]['validation_metric']:.1f})"
                     if t in r["runs"] else "" for t in tasks]
            mark = " **chosen**" if r["lr"] == g["chosen_lr"] else ""
            lines.append(f"| {name} | ×{r['factor']:g} | {r['lr']:g}{mark} | " + " | ".join(cells)
                         + f" | {r['relative_loss']:.4f} |")
    return "\n".join(lines)
