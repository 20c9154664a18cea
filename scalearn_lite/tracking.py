"""Experiment trackers (TensorBoard, W&B, MLflow, ...) through accelerate's tracking API.

`fit` logs, when FitConfig.report_to names trackers: every optimiser step "train/loss" and "train/lr"; every epoch
its history row (train and validation loss, the validation metric, and for ScaLearn runs ω per layer × source as
"omega/<layer>/<source>"). history.csv is written as before; trackers are an extra view of the same numbers.
"""
from __future__ import annotations

from typing import Optional, Sequence

# accelerate's tracker names -> the pip package that provides them
TRACKER_PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb", "trackio": "trackio", "comet_ml": "comet-ml",
                    "aim": "aim", "mlflow": "mlflow", "clearml": "clearml", "dvclive": "dvclive", "swanlab": "swanlab"}


def check_trackers(report_to: Optional[Sequence]) -> tuple:
    """The trackers as a tuple (names or accelerate GeneralTracker objects); a clear error for an unknown name or
    a tracker whose package is not installed ("all": whatever is installed)."""
    if not report_to:
        return ()
    if isinstance(report_to, str):
        report_to = [r.strip() for r in report_to.split(",") if r.strip()]
    from accelerate.tracking import GeneralTracker, get_available_trackers

    available = {str(t) for t in get_available_trackers()}
    out = []
    for tracker in report_to:
        if isinstance(tracker, GeneralTracker) or tracker == "all":
            out.append(tracker)
            continue
        if tracker not in TRACKER_PACKAGES:
            raise ValueError(f"unknown tracker {tracker!r} for --report-to; accelerate supports "
                             f"{', '.join(TRACKER_PACKAGES)} (or 'all': every one installed)")
        if tracker not in available:
            raise RuntimeError(f"--report-to {tracker}: the {TRACKER_PACKAGES[tracker]!r} package is not installed; "
                               f"`pip install {TRACKER_PACKAGES[tracker]}` (history.csv is written either way)")
        out.append(tracker)
    return tuple(out)


def accelerator_kwargs(report_to: tuple, logging_dir: Optional[str]) -> dict:
    """Accelerator(...) arguments for the trackers (none when report_to is empty)."""
    if not report_to:
        return {}
    return {"log_with": list(report_to), "project_dir": logging_dir or "runs/tensorboard"}


def _plain(value):
    return value if isinstance(value, (int, float, str, bool)) else str(value)


def start(accelerator, run_name: str, config: dict) -> bool:
    """Open the trackers' run (main process only, as accelerate does); False when no tracker is configured."""
    if not accelerator.log_with:
        return False
    accelerator.init_trackers(run_name, config={k: _plain(v) for k, v in config.items() if v is not None})
    return True


def log_step(accelerator, step: int, loss: float, lr: float) -> None:
    accelerator.log({"train/loss": loss, "train/lr": lr}, step=step)


def log_epoch(accelerator, row: dict) -> None:
    """One history row: losses, the validation metric, ω per layer × source, at the row's optimiser step."""
    accelerator.log({k: v for k, v in row.items() if k not in ("epoch", "steps") and isinstance(v, (int, float))},
                    step=row["steps"])


def finish(accelerator) -> None:
    """Close the trackers (not accelerator.end_training(): that also ends the process group, which the
    evaluation after fit still needs)."""
    for tracker in accelerator.trackers:
        tracker.finish()
    accelerator.trackers = []
