"""The probing experiment of notebook 02: frozen source adapters scaled by a *fixed* ω, only a head trained.

Is the target's score a smooth function of ω? `ProbeBench(target, sources, preset).score(omega)` computes the
first-token features of the frozen encoder with the sources scaled by ω (eval mode, once per ω) and trains a fresh
head on them; `sweep_one` scales one source at a time, `sweep_two` spans a 2-D grid over two sources.
"""
from __future__ import annotations

import math
from dataclasses import replace
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import pandas as pd
import torch
import torch.nn as nn

from . import data as data_mod
from .config import FIXED_OMEGA, Preset, get_preset
from .device import autocast, default_device, model_device, precision_for, to_device
from .encoding import make_loader
from .metrics import compute_metrics, decide_problem, main_metric
from .models import load_base
from .tasks import Task, get_task
from .train import loss_fn, set_seed



def _probe_head(hidden_size: int, num_labels: int, dropout: float = 0.1) -> nn.Sequential:
    """The adapters classification head's shape: dropout, dense, tanh, dropout, out (on the first token)."""
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden_size, hidden_size), nn.Tanh(), nn.Dropout(dropout),
                         nn.Linear(hidden_size, num_labels))


class ProbeBench:
    """A frozen encoder with S frozen source adapters at a *fixed* ω (never trained) and a target's data.

    `score(omega)` trains only a fresh head on the first-token output and returns validation/test metrics.
    The encoder is frozen, so its features are computed once per ω (eval mode) and the head trains on them.
    """

    def __init__(self, target: str, sources: Sequence[str], preset: Union[str, Preset], *, seed: int = 0,
                 data_dir=None, max_train: Optional[int] = None, include_target: bool = True,
                 progress: bool = False, device=None):
        from .data import load_task_data
        from .encoding import encode_splits
        from .methods import build_scalearn
        from .sources import order_sources, resolve_source, source_label

        base = get_preset(preset)  # sources come from the cache of the unmodified preset
        self.preset = base.with_(max_train=max_train)
        self.task = data_mod.resolve_labels(get_task(target), data_dir)
        if self.task.problem not in ("classification", "regression"):
            raise ValueError(f"probing supports classification and regression targets, not {self.task.problem}")
        names = order_sources(self.task, sources, include_target)
        refs = [resolve_source(s, base, data_dir=data_dir, seed=0, progress=progress) for s in names]
        self.sources = [source_label(s) for s in names]
        rows = load_task_data(self.task, self.preset, data_dir, seed=seed)
        set_seed(seed)
        self.net, self.tokenizer = load_base(base.model, base.num_layers, base.attention)
        cfg = replace(FIXED_OMEGA, omega_shape="scalar")
        self.scalearn = build_scalearn(self.net, self.sources, refs, cfg)
        self.scalearn.set_omega(torch.tensor(0.0), trainable=False)
        self.net.to(default_device() if device is None else device).eval()  # CUDA when there is one
        # on a GPU its precision (device.precision_for: bf16, or fp16 on a T4); on the CPU fp32
        self.precision = precision_for(model_device(self.net))
        self.feats = encode_splits(self.task, rows, self.tokenizer, self.preset)
        self.seed, self._cache = seed, {}

    @torch.no_grad()
    def features(self, omega: Sequence[float]) -> Dict[str, Tuple[torch.Tensor, torch.Tensor]]:
        """{split: (X (N, d) first-token outputs, y (N,))} with ω_i = omega[i] in every layer (cached per ω)."""
        key = tuple(round(float(w), 6) for w in omega)
        if len(key) != len(self.sources):
            raise ValueError(f"need one ω per source {self.sources}, got {list(omega)}")
        if key not in self._cache:
            self.scalearn.set_omega(torch.tensor(key).view(-1, 1))  # (S, 1) → every layer and unit
            self._cache[key] = {split: self._encode(f) for split, f in self.feats.items() if f}
        return self._cache[key]

    def _encode(self, feats: List[dict]):
        """(X (N, d) first-token outputs in fp32 on the CPU, y (N,)); the encoder runs on its own device."""
        xs, ys, where = [], [], model_device(self.net)
        for batch in make_loader(feats, self.task, self.tokenizer, self.preset.eval_batch_size):
            ys.append(batch.pop("labels"))
            with autocast(where):
                hidden = self.net.base_model(**to_device(batch, where)).last_hidden_state  # (B, T, d)
            xs.append(hidden[:, 0].float().cpu())  # (B, d)
        return torch.cat(xs), torch.cat(ys)

    def score(self, omega: Sequence[float], epochs: int = 10, lr: float = 1e-3, batch_size: int = 32) -> dict:
        """Train a fresh head on the features at this ω; best epoch on validation → {validation, test} main metric."""
        data = self.features(omega)
        head = train_head(self.task, *data["train"], *data["validation"], epochs=epochs, lr=lr,
                          batch_size=batch_size, seed=self.seed)
        return {"validation": head_metric(self.task, head, *data["validation"]),
                "test": head_metric(self.task, head, *data["test"]) if "test" in data else float("nan")}


def head_metric(task: Task, head: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """The task's main metric of `head` on features x (N, d) with labels y (N,)."""
    head.eval()
    with torch.no_grad():
        logits = head(x).numpy()  # (N, C)
    return compute_metrics(task, decide_problem(task.problem, logits), y.tolist())[main_metric(task)]


def train_head(task: Task, x: torch.Tensor, y: torch.Tensor, x_val: torch.Tensor, y_val: torch.Tensor, *,
               epochs: int = 10, lr: float = 1e-3, batch_size: int = 32, seed: int = 0) -> nn.Module:
    """AdamW on a fresh head over fixed features x (N, d); returns the head of the best validation epoch."""
    torch.manual_seed(seed)
    head = _probe_head(x.shape[1], task.num_labels)
    opt = torch.optim.AdamW(head.parameters(), lr=lr)
    best, best_state = -math.inf, None
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # ops this small only lose time to thread hand-offs (8 s vs 0.25 s on a busy CPU)
    try:
        for _ in range(epochs):
            head.train()
            for idx in torch.randperm(len(x)).split(batch_size):
                loss = loss_fn(task.problem, head(x[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
            score = head_metric(task, head, x_val, y_val)
            if score > best:
                best, best_state = score, {k: v.clone() for k, v in head.state_dict().items()}
    finally:
        torch.set_num_threads(threads)
    head.load_state_dict(best_state)
    return head.eval()


def sweep_one(bench: ProbeBench, values: Iterable[float], sources: Optional[Sequence[str]] = None,
              **kw) -> pd.DataFrame:
    """Scale ONE source adapter by each ω in `values` (the others at 0): rows source, omega, validation, test."""
    rows = []
    for name in sources or bench.sources:
        i = bench.sources.index(name)
        for w in values:
            omega = [0.0] * len(bench.sources)
            omega[i] = float(w)
            rows.append({"source": name, "omega": float(w), **bench.score(omega, **kw)})
    return pd.DataFrame(rows)


def sweep_two(bench: ProbeBench, pair: Tuple[str, str], values: Iterable[float], values_2=None,
              **kw) -> pd.DataFrame:
    """The 2-D grid: ω_1 on pair[0], ω_2 on pair[1] (others 0): rows omega_1, omega_2, validation, test."""
    i, j = bench.sources.index(pair[0]), bench.sources.index(pair[1])
    values = [float(v) for v in values]
    rows = []
    for w1 in values:
        for w2 in (values if values_2 is None else values_2):
            omega = [0.0] * len(bench.sources)
            omega[i], omega[j] = w1, float(w2)
            rows.append({"omega_1": w1, "omega_2": float(w2), **bench.score(omega, **kw)})
    df = pd.DataFrame(rows)
    df.attrs["pair"] = tuple(pair)
    return df
