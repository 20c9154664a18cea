"""Typed configuration: the four ScaLearn variants as field values, and named run presets."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Optional

OMEGA_SHAPES = ("vector", "scalar")
CPU_PRECISIONS = ("fp32", "bf16", "auto")


@dataclass(frozen=True)
class ScaLearnConfig:
    """How the scaling coefficients ω over S frozen source adapters are shaped and trained."""

    omega_shape: str = "vector"  # "vector": ω ∈ R^{S×d} (one coefficient per hidden unit); "scalar": ω ∈ R^{S×1}
    share_layers: bool = False  # "++" variants: one ω tensor shared by every layer
    init_scale: float = 2.0  # ω starts at N(init_scale / S, init_std): the paper's "2/S" initialisation
    init_std: float = 1e-3  # std of the initial ω (paper: 0.001)
    omega_dropout: float = 0.3  # dropout on the ω tensor itself (paper: 0.3, 0.0 for ScaLearnUniform++)

    def __post_init__(self):
        if self.omega_shape not in OMEGA_SHAPES:
            raise ValueError(f"omega_shape must be one of {OMEGA_SHAPES}, got {self.omega_shape!r}")
        if not 0.0 <= self.omega_dropout < 1.0:
            raise ValueError(f"omega_dropout must be in [0, 1), got {self.omega_dropout}")
        if self.init_std < 0:
            raise ValueError(f"init_std must be >= 0, got {self.init_std}")


VARIANTS = {
    "scalearn": ScaLearnConfig(),
    "scalearn_uniform": ScaLearnConfig(omega_shape="scalar"),
    "scalearn_pp": ScaLearnConfig(share_layers=True),
    "scalearn_uniform_pp": ScaLearnConfig(omega_shape="scalar", share_layers=True, omega_dropout=0.0),
}
PAPER_NAMES = {
    "scalearn": "ScaLearn",
    "scalearn_uniform": "ScaLearnUniform",
    "scalearn_pp": "ScaLearn++",
    "scalearn_uniform_pp": "ScaLearnUniform++",
}


@dataclass(frozen=True)
class Preset:
    """Everything that changes between a unit test, a laptop CPU and the paper's GPU runs."""

    name: str
    model: str = "embedded"  # hub name, local folder, or "embedded" (all-MiniLM-L6-v2 shipped on PyPI)
    num_layers: Optional[int] = None  # keep only the first N encoder layers (None: all)
    max_length: int = 128  # tokens per input (paper: 128)
    batch_size: int = 32  # paper: 32
    eval_batch_size: int = 64  # inference only; does not change results
    max_train: Optional[int] = None  # subsample the 90% train split to this many rows (None: all)
    max_validation: Optional[int] = None  # subsample the 10% validation split (None: all)
    max_test: Optional[int] = None  # subsample the official dev split used as test (None: all)
    source_lr: float = 3e-4  # stage 1 adapter + head (paper: 3e-4)
    source_epochs: int = 30  # paper: up to 30, with early stopping
    patience: int = 5  # early stopping on validation loss (paper: 5)
    transfer_lr: float = 6e-3  # ScaLearn ω + head, linear decay (paper: 6e-3)
    transfer_epochs: int = 30  # paper: 30, best epoch kept
    fusion_lr: float = 5e-5  # AdapterFusion (paper: 5e-5)
    finetune_lr: float = 2e-5  # full fine-tuning
    max_steps: Optional[int] = None  # hard cap on optimiser steps per run (few-shot: 1000)
    warmup_ratio: float = 0.0  # linear warm-up fraction of the schedule
    cpu_precision: str = "auto"  # on CPU: "fp32", "bf16" autocast, or "auto" (bf16 where the CPU has AMX); CUDA: mixed

    def __post_init__(self):
        if self.cpu_precision not in CPU_PRECISIONS:
            raise ValueError(f"cpu_precision must be one of {CPU_PRECISIONS}, got {self.cpu_precision!r}")

    def with_(self, **changes) -> "Preset":
        """A copy with some fields changed (None values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


PRESETS = {
    # Unit tests and CI fast mode: the embedded encoder cut to 2 layers, seconds per run.
    "tiny": Preset(
        name="tiny", num_layers=2, max_length=64, batch_size=16, max_train=512, max_validation=64,
        max_test=200, source_lr=2e-3, source_epochs=3, patience=2, transfer_lr=6e-3, transfer_epochs=2,
        fusion_lr=5e-4, finetune_lr=1e-4, cpu_precision="fp32",
    ),
    # A laptop CPU: the full 6-layer embedded encoder, subsampled training sets, a few epochs.
    # Same budget for every method: stage 1 (whose target adapter is the Adapter baseline) and stage 2 see the
    # same 500 target rows for the same 2 epochs (32 steps). Learning rates: each method's paper rate x 1, 3 or 10,
    # picked the same way for all by `scalearn-lite lr-grid` (lowest validation loss; benchmarks/lr_grid_cpu.json):
    # stage 1 x10, ScaLearn (and the head-only baselines) x1, AdapterFusion x10, fine-tuning x10.
    "cpu": Preset(
        name="cpu", max_length=128, batch_size=32, max_train=500, max_validation=200,
        source_lr=3e-3, source_epochs=2, patience=5, transfer_lr=6e-3, transfer_epochs=2,
        fusion_lr=5e-4, finetune_lr=2e-4,
    ),
    # The paper's protocol on a GPU.
    "paper": Preset(name="paper", model="roberta-base"),
}


def get_preset(name: str) -> Preset:
    """The named preset, or a ValueError listing the valid names."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}") from None
