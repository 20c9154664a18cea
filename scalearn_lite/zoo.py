"""The source zoo: one stage-1 adapter per offline source task, trained once with the preset's *source* budget
and cached; every consumer (demo, reproduce, lr-grid, notebooks) loads the same folders.

The paper's premise is strong sources and a small target that borrows from them, so a CPU miniature spends its
stage-1 steps here, once, and keeps the targets small (see config.PRESETS["cpu"]).
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence

import pandas as pd

from . import data as data_mod
from .config import Preset
from .metrics import best_constant
from .data import load_task_data
from .sources import train_source
from .tasks import get_task

# Every task that can be a source offline (../shared/data), in benchmark order; QNLI and BoolQ are dev-only.
ZOO_TASKS = ("cola", "sst2", "mrpc", "stsb", "rte", "qnli", "boolq", "cb", "copa", "wic", "wsc", "multirc")
ZOO_COLUMNS = ["task", "dev_only", "metric", "train_rows", "validation_rows", "test_rows", "steps", "seconds",
               "validation", "validation_constant", "test", "test_constant", "cached", "path"]


def available(tasks: Sequence[str] = ZOO_TASKS, data_dir=None) -> List[str]:
    """The tasks of `tasks` that have any data here (train file, or a dev file for a dev-only source)."""
    out = []
    for name in tasks:
        try:
            data_mod.load_raw(name, data_dir)
        except (FileNotFoundError, ValueError, OSError):
            continue
        out.append(get_task(name).name)
    return out


def _pct(value: Optional[float]) -> Optional[float]:
    return None if value is None else 100.0 * value


def zoo_row(task_name: str, preset: Preset, data_dir=None, progress: bool = True) -> dict:
    """Train (or reuse) one zoo adapter; its quality row: scores in %, next to the best constant prediction."""
    res = train_source(task_name, preset, data_dir=data_dir, seed=0, progress=progress, role="source")
    m, task = res.metrics, get_task(task_name)
    rows = load_task_data(data_mod.resolve_labels(task, data_dir), preset, data_dir, as_source=True)
    return {"task": task.name, "dev_only": not data_mod.has_train(task, data_dir), "metric": m["metric"],
            "train_rows": m["rows"]["train"], "validation_rows": m["rows"]["validation"],
            "test_rows": m["rows"]["test"], "steps": m["steps"], "seconds": m["seconds"],
            "validation": _pct(m["validation"].get(m["metric"])),
            "validation_constant": _pct(best_constant(task, [r["label"] for r in rows["validation"]])),
            "test": _pct(m["test"].get(m["metric"])) if m["test"] else None,
            "test_constant": _pct(best_constant(task, [r["label"] for r in rows["test"]])) if rows["test"] else None,
            "cached": res.cached, "path": str(res.path)}


def train_zoo(preset: Preset, tasks: Sequence[str] = ZOO_TASKS, data_dir=None, progress: bool = True) -> pd.DataFrame:
    """Every available zoo task trained (or reused from the cache), one quality row each."""
    names = available(tasks, data_dir)
    if not names:
        raise FileNotFoundError(f"none of the zoo tasks {', '.join(tasks)} has data here; pass --data-dir (a folder "
                                f"with glue_data/ and superglue/) or go online")
    return pd.DataFrame([zoo_row(n, preset, data_dir, progress) for n in names], columns=ZOO_COLUMNS)


def _cell(value: Optional[float]) -> str:
    return "–" if value is None or value != value else f"{value:.2f}"


def zoo_table(zoo: pd.DataFrame) -> str:
    """Markdown: one row per source adapter, its budget and its scores against the best constant prediction."""
    lines = ["| source | metric | train rows | steps | train s | validation | (constant) | test | (constant) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in zoo.itertuples():
        name = f"{r.task} (dev only: no test)" if r.dev_only else r.task
        lines.append(f"| {name} | {r.metric} | {r.train_rows:,} | {r.steps} | {r.seconds:.0f} | {_cell(r.validation)} | "
                     f"{_cell(r.validation_constant)} | {_cell(r.test)} | {_cell(r.test_constant)} |")
    return "\n".join(lines)


def write_zoo(out: Path, zoo: pd.DataFrame, header: str) -> None:
    """zoo.csv and zoo.md (header + table) in `out`."""
    from .files import write_text

    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "zoo.csv", zoo.drop(columns=["path"]).to_csv(index=False, float_format="%.4f"))
    write_text(out / "zoo.md", f"{header}\n\n{zoo_table(zoo)}\n")
