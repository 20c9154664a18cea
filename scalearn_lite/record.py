"""What a run's metrics.json holds: one record of a fit, shared by stage 1 (a source's or the target's own adapter)
and stage 2 (a transfer run, the Adapter row included).

    fit_record       the fit itself: main metric, test and validation scores, best epoch, steps and step budget,
                     rows per split, base model, precision and attention it ran in (FIT_FIELDS)
    stage1_record    + task, seed, k_shot, role, seconds, and the loss check against the constant predictor
    transfer_record  + target, method, seed, k_shot, sources, test_metric / validation_metric (the main metric's
                     scores), transfer and trainable parameter counts, train and wall seconds, and extras
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence

from .config import Preset
from .device import precision_used
from .metrics import loss_check, main_metric
from .models import attention_used, model_id
from .tasks import Task

FIT_FIELDS = ("metric", "test", "validation", "best_epoch", "steps", "step_budget", "rows", "base", "precision",
              "attention")


def fit_record(task: Task, preset: Preset, result, test: dict, rows: Dict[str, list]) -> dict:
    """The FIT_FIELDS of one fit (`result`: a train.FitResult; `test`: its test scores; `rows`: rows per split)."""
    return {"metric": main_metric(task), "test": test, "validation": result.best_validation,
            "best_epoch": result.best_epoch, "steps": result.steps, "step_budget": result.step_budget,
            "rows": {k: len(v) for k, v in rows.items()}, "base": model_id(preset.model, preset.num_layers),
            "precision": precision_used(preset.cpu_precision), "attention": attention_used(preset.attention)}


def stage1_record(task: Task, preset: Preset, result, test: dict, rows: Dict[str, list], *, seed: int,
                  k_shot: Optional[int], role: str) -> dict:
    """metrics.json of a stage-1 adapter folder; a run whose loss did not beat the constant predictor says so."""
    record = {"task": task.name, "seed": seed, "k_shot": k_shot, "role": role,
              **fit_record(task, preset, result, test, rows), "seconds": result.seconds}
    record.update(loss_check(task, rows, result.history, f"adapter for {task.name}"))
    return record


def transfer_record(fit: dict, *, target: str, method: str, seed: int, k_shot: Optional[int], sources: Sequence[str],
                    transfer_params: int, trainable_params: int, train_seconds: float, wall_seconds: float,
                    **extra) -> dict:
    """metrics.json of a stage-2 run folder, from a fit_record (or the FIT_FIELDS of the stage-1 record the
    Adapter row reuses) and the run's own fields; `extra`: method-specific fields (ω's rate, AdapterSoup, ...)."""
    main = fit["metric"]
    return {"target": target, "method": method, "seed": seed, "k_shot": k_shot, "sources": list(sources), **fit,
            "test_metric": fit["test"][main], "validation_metric": fit["validation"].get(main),
            "transfer_params": transfer_params, "trainable_params": trainable_params,
            "train_seconds": train_seconds, "wall_seconds": wall_seconds, **extra}
