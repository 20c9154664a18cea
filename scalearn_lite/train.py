"""One plain training loop and evaluate(); it knows nothing about ScaLearn.

The model is any module called as `model(input_ids=..., attention_mask=..., head=...)` that returns
`.logits`; the trainable parameters are whatever `params` says. Runs on CPU, one GPU (bf16/fp16
autocast) or several under `accelerate launch`, unchanged.
"""
from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import metrics as metrics_mod
from .device import (autocast as device_autocast, cpu_bf16, frozen_linears_cast, model_device, precision_for,
                     resolve_cpu_precision, to_device)
from . import tracking
from .encoding import token_length, make_loader


@dataclass
class FitConfig:
    """How one model is trained."""

    lr: float  # peak learning rate (AdamW)
    epochs: Optional[int]  # maximum epochs (None: as many as max_steps needs, the few-shot protocol)
    batch_size: int = 32  # paper: 32
    eval_batch_size: int = 64  # inference only
    patience: Optional[int] = None  # early stopping on the selection criterion (None: run all epochs)
    select_by: str = "metric"  # "loss" (validation loss, stage 1) or "metric" (validation headline metric)
    warmup_ratio: float = 0.0  # linear warm-up, then linear decay to 0
    max_steps: Optional[int] = None  # cap on optimiser steps; with epochs=None the budget itself (few-shot: 1000)
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    seed: int = 0
    progress: bool = True  # tqdm bars
    desc: str = "train"
    cpu_precision: str = "fp32"  # "fp32", "bf16" or "auto" on CPU (see resolve_cpu_precision); CUDA is always mixed
    report_to: tuple = ()  # accelerate trackers ("tensorboard", "wandb", ..., GeneralTracker objects); () = none
    logging_dir: Optional[str] = None  # where local trackers write (TensorBoard: <logging_dir>/<run_name>)
    run_name: str = "scalearn"  # the trackers' run name

    def __post_init__(self):
        self.report_to = tracking.check_trackers(self.report_to)
        if self.select_by not in ("loss", "metric"):
            raise ValueError(f"select_by must be 'loss' or 'metric', got {self.select_by!r}")
        resolve_cpu_precision(self.cpu_precision)  # validates the name
        if self.epochs is None and self.max_steps is None:
            raise ValueError("give epochs, max_steps or both (epochs=None means: run until max_steps)")


@dataclass
class FitResult:
    history: List[dict] = field(default_factory=list)  # one row per epoch
    best_epoch: int = -1
    best_validation: Dict[str, float] = field(default_factory=dict)
    steps: int = 0
    step_budget: int = 0  # the steps the run was allowed (epochs x steps per epoch, or max_steps)
    seconds: float = 0.0


def set_seed(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    import random

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def loss_fn(problem: str, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The task loss for raw head logits: CE, MSE (regression) or BCE (multi-label)."""
    logits = logits.float()
    if problem == "regression":
        return F.mse_loss(logits.view(-1), labels.view(-1))
    if problem == "multi_label":
        return F.binary_cross_entropy_with_logits(logits, labels)
    return F.cross_entropy(logits, labels)


def _accelerator(cfg: Optional["FitConfig"] = None):
    """accelerate's Accelerator. split_batches: under `accelerate launch` / torchrun each of the N processes gets
    1/N of every batch, so N processes train on the same batches (the same effective batch size) as one."""
    from accelerate import Accelerator
    from accelerate.utils import DataLoaderConfiguration

    kw = {"dataloader_config": DataLoaderConfiguration(split_batches=True)}
    if cfg is not None:
        kw.update(tracking.accelerator_kwargs(cfg.report_to, cfg.logging_dir))
    if torch.cuda.is_available():  # fp16 gives accelerate's GradScaler (GPUs without native bf16: T4, V100)
        return Accelerator(mixed_precision=precision_for("cuda"), **kw)
    return Accelerator(cpu=True, **kw)  # CPU bf16 is our own autocast: accelerate's precision is fixed per process


def _mean_loss(accelerator, loss: torch.Tensor) -> float:
    """The batch's loss averaged over processes (each holds 1/N of the batch): the single-process value."""
    if accelerator.num_processes == 1:
        return loss.item()
    return accelerator.reduce(loss.detach(), "mean").item()


def _warn_partial_batch(accelerator, rows: int, batch_size: int) -> None:
    if accelerator.num_processes > 1 and rows % batch_size and accelerator.is_main_process:
        import warnings

        warnings.warn(f"{rows} training rows are not a multiple of the batch size {batch_size}: with "
                      f"{accelerator.num_processes} processes accelerate's split_batches skips the partial batch "
                      "(a single process trains on it)")


def _autocast(accelerator, cpu_precision: str):
    """The forward pass's precision context: accelerate's on CUDA, bf16 autocast on CPU if asked for."""
    if accelerator.device.type != "cpu":
        return accelerator.autocast()
    if cpu_bf16("cpu", cpu_precision):
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return nullcontext()


def _forward(model, batch: dict, head: Optional[str]) -> torch.Tensor:
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    if head is not None:
        inputs["head"] = head
    return model(**inputs).logits


@torch.no_grad()
def predict(model, task, feats: List[dict], tokenizer, head: Optional[str] = None, batch_size: int = 64,
            accelerator=None, cpu_precision: str = "fp32") -> tuple:
    """(logits (N, C) as numpy, mean loss) over encoded features, in eval mode."""
    accelerator = accelerator or _accelerator()
    order = np.argsort([-token_length(f) for f in feats], kind="stable")  # batch similar lengths: less padding
    loader = accelerator.prepare(make_loader([feats[i] for i in order], task, tokenizer, batch_size))
    was_training = model.training
    model.eval()
    outs, losses, n = [], 0.0, 0
    device = model_device(model)  # the inputs go where the model is, wherever the accelerator put the batches
    with frozen_linears_cast(model, device.type, cpu_precision):
        for batch in loader:
            batch = to_device(batch, device)
            with device_autocast(device, resolve_cpu_precision(cpu_precision)):
                logits = _forward(model, batch, head)
            logits, labels = accelerator.gather_for_metrics((logits.float(), batch["labels"]))  # all processes' rows
            loss = loss_fn(task.problem, logits, labels)
            outs.append(logits.cpu().numpy())
            losses += float(loss) * len(labels)
            n += len(labels)
    model.train(was_training)
    logits = np.empty_like(np.concatenate(outs))
    logits[order] = np.concatenate(outs)  # back to the input order
    return logits, losses / max(n, 1)


def evaluate(model, task, feats: List[dict], tokenizer, head: Optional[str] = None, batch_size: int = 64,
             accelerator=None, cpu_precision: str = "fp32") -> Dict[str, float]:
    """Task metrics (in [0, 1]) and "loss" of a model on encoded features."""
    logits, loss = predict(model, task, feats, tokenizer, head, batch_size, accelerator, cpu_precision)
    preds = metrics_mod.decide_problem(task.problem, logits)
    labels = [f["label"] for f in feats]
    groups = [f["group"] for f in feats]
    extra = {k: [f.get(k) for f in feats] for k in ("entity", "answers")} if task.problem == "record" else None
    result = metrics_mod.compute_metrics(task, preds, labels, groups=groups, extra=extra)
    result["loss"] = loss
    return result


def _factor(total_steps: int, warmup_ratio: float) -> Callable[[int], float]:
    """The learning-rate factor of each step: linear warm-up over warmup_ratio of the steps, then linear decay."""
    warmup = int(total_steps * warmup_ratio)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(warmup, 1)
        return max(0.0, (total_steps - step) / max(total_steps - warmup, 1))

    return factor


def _schedule(optimizer, total_steps: int, warmup_ratio: float):
    return torch.optim.lr_scheduler.LambdaLR(optimizer, _factor(total_steps, warmup_ratio))


def step_budget(steps_per_epoch: int, epochs: Optional[int], max_steps: Optional[int]) -> tuple:
    """(optimiser steps, epochs) of a run: epochs x steps per epoch, capped by max_steps; with epochs=None,
    max_steps overrides epochs as in HF's Trainer (epochs run until the budget is spent)."""
    if epochs is None:
        return max_steps, math.ceil(max_steps / steps_per_epoch)
    total = steps_per_epoch * epochs
    return (total if max_steps is None else min(max_steps, total)), epochs


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite: the run is stopped before anything is saved."""


def _check_finite(loss, cfg: FitConfig, epoch: int, step: int, what: str = "training loss") -> None:
    """Stop with a clear message when a loss is NaN/inf (usually a learning rate far too high)."""
    value = float(loss.detach() if hasattr(loss, "detach") else loss)
    if not math.isfinite(value):
        raise TrainingDiverged(f"{cfg.desc}: the {what} became {value} at step {step} (epoch {epoch}, lr {cfg.lr:g}): "
                               "training diverged and nothing was saved; lower the learning rate and rerun")


def _better(cfg: FitConfig, main: str, new: dict, best: Optional[dict]) -> bool:
    if best is None:
        return True
    if cfg.select_by == "loss":
        return new["loss"] < best["loss"]
    return new[main] > best[main]


def _tracked_config(cfg: FitConfig) -> dict:
    return {k: v for k, v in vars(cfg).items() if k not in ("report_to", "logging_dir", "run_name", "progress")}


def _param_groups(params) -> List[dict]:
    """torch's optimiser groups from a list of parameters or of groups ({"params": [...], "lr": ...}); parameters
    without a gradient and groups left empty are dropped."""
    params = list(params)
    groups = params if params and isinstance(params[0], dict) else [{"params": params}]
    out = [{**g, "params": [p for p in g["params"] if p.requires_grad]} for g in groups]
    return [g for g in out if g["params"]]


def schedule_sum(total_steps: int, warmup_ratio: float = 0.0) -> float:
    """Σ over a run's optimiser steps of the schedule's factor (linear warm-up, then linear decay): a parameter
    trained by Adam at peak rate lr moves by at most about lr · this in the whole run ((T+1)/2 without warm-up)."""
    factor = _factor(total_steps, warmup_ratio)
    return float(sum(factor(step) for step in range(total_steps)))


def fit(model, task, train_feats: List[dict], val_feats: List[dict], tokenizer, cfg: FitConfig, *,
        params: List[torch.nn.Parameter], head: Optional[str] = None,
        extra_loss: Optional[Callable[[], Optional[torch.Tensor]]] = None,
        on_epoch: Optional[Callable[[], dict]] = None) -> FitResult:
    """Train `params` of `model` on `train_feats`; keep the best epoch on `val_feats` (restored at the end).
    `params`: a list of parameters (all at cfg.lr) or of optimiser groups ({"params": [...], "lr": own rate})."""
    set_seed(cfg.seed)
    accelerator = _accelerator(cfg)
    groups = _param_groups(params)
    params = [p for g in groups for p in g["params"]]
    if not params:
        raise ValueError("nothing to train: no parameter requires a gradient")
    loader = make_loader(train_feats, task, tokenizer, cfg.batch_size, shuffle=True, seed=cfg.seed)
    steps_per_epoch = math.ceil(len(train_feats) / cfg.batch_size)
    total, epochs = step_budget(steps_per_epoch, cfg.epochs, cfg.max_steps)
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = _schedule(optimizer, total, cfg.warmup_ratio)
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    _warn_partial_batch(accelerator, len(train_feats), cfg.batch_size)
    tracked = tracking.start(accelerator, cfg.run_name, _tracked_config(cfg))
    main = metrics_mod.main_metric(task)
    result, best_state, bad_epochs, start = FitResult(step_budget=total), None, 0, time.perf_counter()
    bar = tqdm(total=total, desc=cfg.desc, disable=not cfg.progress or not accelerator.is_main_process, leave=False)
    with frozen_linears_cast(model, accelerator.device.type, cfg.cpu_precision):  # cast once per fit, not per step
        for epoch in range(epochs):
            model.train()
            running, seen = 0.0, 0
            for batch in loader:
                with _autocast(accelerator, cfg.cpu_precision):
                    loss = loss_fn(task.problem, _forward(model, batch, head), batch["labels"])
                    # the regulariser joins from the 2nd step on: adapters' AdapterTrainer back-propagates it after each
                    # optimiser step, so its gradient (at the updated weights) lands in the *next* step's update
                    reg = extra_loss() if extra_loss is not None and result.steps > 0 else None
                    total_loss = loss + reg if reg is not None else loss
                _check_finite(total_loss, cfg, epoch, result.steps + 1)
                accelerator.backward(total_loss)
                if cfg.max_grad_norm:
                    accelerator.clip_grad_norm_(params, cfg.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                step_loss = _mean_loss(accelerator, loss)
                running, seen, result.steps = running + step_loss, seen + 1, result.steps + 1
                if tracked:
                    tracking.log_step(accelerator, result.steps, step_loss, scheduler.get_last_lr()[0])
                bar.update(1)
                bar.set_postfix(epoch=epoch, loss=f"{running / seen:.4f}")
                if result.steps >= total:
                    break
            val = evaluate(model, task, val_feats, tokenizer, head, cfg.eval_batch_size, accelerator, cfg.cpu_precision)
            _check_finite(val["loss"], cfg, epoch, result.steps, "validation loss")
            row = {"epoch": epoch, "train_loss": running / max(seen, 1), "validation_loss": val["loss"],
                   f"validation_{main}": val[main], "steps": result.steps,
                   "seconds": time.perf_counter() - start}
            row.update(on_epoch() if on_epoch is not None else {})
            result.history.append(row)
            if tracked:
                tracking.log_epoch(accelerator, row)
            if _better(cfg, main, val, result.best_validation or None):
                result.best_epoch, result.best_validation, bad_epochs = epoch, val, 0
                best_state = [p.detach().clone() for p in params]
            else:
                bad_epochs += 1
            if (cfg.patience is not None and bad_epochs >= cfg.patience) or result.steps >= total:
                break
    bar.close()
    if tracked:
        tracking.finish(accelerator)
    with torch.no_grad():
        for p, saved in zip(params, best_state):
            p.copy_(saved)
    result.seconds = time.perf_counter() - start
    return result
