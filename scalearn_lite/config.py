"""Typed configuration: the four ScaLearn variants as field values, and named run presets."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional, Tuple, Union

OMEGA_SHAPES = ("vector", "scalar")
CPU_PRECISIONS = ("fp32", "bf16", "auto")
ATTENTIONS = ("auto", "eager", "sdpa")


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
# The controls that keep ω fixed (nothing of ω trains, no dropout, no init noise): "average" sets it to 1/S,
# "fixed_omega" keeps ScaLearn's start 2/S, the probes of notebook 02 set it by hand. Named once, here.
FIXED_OMEGA = ScaLearnConfig(omega_dropout=0.0, init_std=0.0)
PAPER_NAMES = {
    "scalearn": "ScaLearn",
    "scalearn_uniform": "ScaLearnUniform",
    "scalearn_pp": "ScaLearn++",
    "scalearn_uniform_pp": "ScaLearnUniform++",
}


SELECT_BY = ("loss", "metric")
OWN_ADAPTER_SEEDS = ("first", "per_seed")
SOUP_WEIGHTINGS = ("similarity", "uniform")


@dataclass(frozen=True)
class Preset:
    """Everything that changes between a unit test, a laptop CPU and the paper's GPU runs.

    Three budgets, kept apart as in the paper: stage 1 on the *source* tasks (trained once, cached as the
    source zoo, reused by every experiment), stage 1 on the *target* (its own adapter: the Adapter row and
    the last source of every transfer), and stage 2 (transfer) on the same target rows.
    """

    name: str
    model: str = "embedded"  # hub name, local folder, or "embedded" (all-MiniLM-L6-v2 shipped on PyPI)
    num_layers: Optional[int] = None  # keep only the first N encoder layers (None: all)
    max_length: int = 128  # tokens per input (paper: 128)
    task_max_length: Tuple[Tuple[str, int], ...] = ()  # per-task overrides, e.g. (("multirc", 324),)
    batch_size: int = 32  # paper: 32
    eval_batch_size: int = 64  # inference only; does not change results
    max_validation: Optional[int] = None  # subsample the 10% validation split (None: all)
    max_test: Optional[int] = None  # subsample the official dev split used as test (None: all)
    # stage 1 on source tasks (the zoo)
    source_max_train: Optional[int] = None  # rows of the 90% train split per source (None: all)
    source_lr: float = 3e-4  # adapter + head (paper: 3e-4)
    source_epochs: int = 30  # paper: up to 30, with early stopping
    source_patience: Optional[int] = 5  # early stopping on validation loss (paper: 5)
    # the target: its own stage-1 adapter and stage 2 see the same rows
    max_train: Optional[int] = None  # target rows of the 90% train split (None: all)
    target_lr: float = 3e-4  # the target's own adapter + head (paper: the stage-1 rate, 3e-4)
    target_epochs: int = 30  # the target's own adapter (paper: as a source, up to 30)
    target_patience: Optional[int] = 5  # its early stopping on validation loss (paper: 5)
    transfer_lr: float = 6e-3  # ScaLearn ω + head, linear decay (paper: 6e-3)
    # ω's own peak rate (None: transfer_lr, as in the paper). Adam moves ω by at most about lr per step, so its
    # travel in a run is bounded by lr·Σ(schedule) ≈ lr·(T+1)/2: several units in the paper's runs, 0.075 in 24
    # steps at 6e-3. A miniature that keeps the head's rate can keep ω's travel comparable with this field.
    omega_lr: Optional[float] = None
    transfer_epochs: int = 30  # paper: 30, best epoch kept
    transfer_select_by: str = "loss"  # stage-2 checkpoint: lowest validation "loss" (paper, GLUE/SuperGLUE) or best "metric"
    transfer_patience: Optional[int] = None  # ScaLearn / average / head only: none in the paper (all 30 epochs)
    fusion_lr: float = 5e-5  # AdapterFusion (paper: 5e-5)
    fusion_patience: Optional[int] = 5  # AdapterFusion and AdapterSoup (paper: 5)
    finetune_lr: float = 2e-5  # full fine-tuning
    max_steps: Optional[int] = None  # cap on optimiser steps of a full-data run (None: epochs decide)
    # few-shot (k training rows): a step budget overriding epochs, in stage 1 (target) and stage 2
    few_shot_steps: int = 1000  # paper: max_steps 1000, epochs run until it is spent
    few_shot_patience: Optional[int] = 20  # early stopping on the validation metric (paper: 20)
    few_shot_max_validation: Optional[int] = 5000  # validation rows from the held-out 10% split (paper: <= 5,000)
    own_adapter_seed: str = "first"  # target's own adapter in stage 2: seed 0's for every seed ("first", paper) or "per_seed"
    soup_k: int = 5  # AdapterSoup: the most similar sources averaged (paper: 5, the target's own allowed)
    soup_weighting: str = "similarity"  # weights = similarity normalised to sum 1 (paper) or "uniform"
    warmup_ratio: float = 0.0  # linear warm-up fraction of the schedule (paper: none)
    cpu_precision: str = "auto"  # on CPU: "fp32", "bf16" autocast, or "auto" (bf16 where the CPU has bf16 units); CUDA: mixed
    # transformers' attention kernel: "eager" (the authors' code path: softmax, dropout, matmul), "sdpa", or "auto"
    # (eager on CPU, where SDPA with attention dropout falls back to a slow path; sdpa on CUDA). Same maths.
    attention: str = "auto"

    def __post_init__(self):
        # read back from JSON as lists of lists: keep it a hashable tuple of (task, length) pairs
        object.__setattr__(self, "task_max_length", tuple((str(t), int(n)) for t, n in self.task_max_length))
        if self.cpu_precision not in CPU_PRECISIONS:
            raise ValueError(f"cpu_precision must be one of {CPU_PRECISIONS}, got {self.cpu_precision!r}")
        if self.attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {ATTENTIONS}, got {self.attention!r}")
        if self.transfer_select_by not in SELECT_BY:
            raise ValueError(f"transfer_select_by must be one of {SELECT_BY}, got {self.transfer_select_by!r}")
        if self.own_adapter_seed not in OWN_ADAPTER_SEEDS:
            raise ValueError(f"own_adapter_seed must be one of {OWN_ADAPTER_SEEDS}, got {self.own_adapter_seed!r}")
        if self.soup_weighting not in SOUP_WEIGHTINGS:
            raise ValueError(f"soup_weighting must be one of {SOUP_WEIGHTINGS}, got {self.soup_weighting!r}")
        if self.omega_lr is not None and not self.omega_lr > 0:
            raise ValueError(f"omega_lr must be > 0 (or None: transfer_lr), got {self.omega_lr}")
        for name in ("few_shot_steps", "soup_k", "batch_size", "source_epochs", "target_epochs", "transfer_epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    def with_(self, **changes) -> "Preset":
        """A copy with some fields changed (None values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def omega_rate(self) -> float:
        """ω's peak learning rate: omega_lr, or transfer_lr where it is not set (the paper: one rate)."""
        return self.transfer_lr if self.omega_lr is None else self.omega_lr

    def length_for(self, task_name: str) -> int:
        """Tokens per input for a task: its override (paper: MultiRC 324) or max_length."""
        return dict(self.task_max_length).get(task_name, self.max_length)


# A laptop CPU, in the paper's shape: strong sources trained once (the zoo: a few thousand rows, a few
# epochs, early stopping), small targets (a few hundred rows) with enough stage-2 steps for ω to move.
# Learning rates: each method's paper rate x 1, 3, 10, 30 or 100, picked the same way for all by `scalearn-lite
# lr-grid` on validation loss (benchmarks/lr_grid_cpu.json): target x30, ScaLearn x1, AdapterFusion x30. The
# sources' rate (x10) was picked under the earlier budget; the zoo is not retrained by the grid.
#
# ω's own rate: the demo preset's pick (0.18, its grid) scaled to keep ω's travel bound lr·Σ(schedule) the same over
# this preset's 48 steps: 0.18 · 12.5 / 24.5 ≈ 0.09 (bound 2.2), not tuned again here.
_CPU = Preset(
    name="cpu", max_length=128, batch_size=32, max_validation=200, omega_lr=0.09,
    source_max_train=4000, source_lr=3e-3, source_epochs=3, source_patience=2,
    max_train=256, target_lr=9e-3, target_epochs=6, target_patience=3,
    transfer_lr=6e-3, transfer_epochs=6, fusion_lr=1.5e-3, fusion_patience=3, finetune_lr=2e-4,
    few_shot_steps=200, few_shot_patience=10, few_shot_max_validation=200,
)


PRESETS = {
    # Unit tests and CI fast mode: the embedded encoder cut to 2 layers, seconds per run.
    "tiny": Preset(
        name="tiny", num_layers=2, max_length=64, batch_size=16, max_validation=64, max_test=200,
        source_max_train=512, source_lr=2e-3, source_epochs=3, source_patience=2,
        max_train=512, target_lr=2e-3, target_epochs=3, target_patience=2,
        transfer_lr=6e-3, transfer_epochs=2, fusion_lr=5e-4, fusion_patience=2, finetune_lr=1e-4,
        few_shot_steps=12, few_shot_patience=4, few_shot_max_validation=64, soup_k=3, cpu_precision="fp32",
    ),
    "cpu": _CPU,
    # The main job (`make demo`): the cpu preset with the target cut to 3 epochs (its own adapter and stage 2:
    # 24 optimiser steps on the same 256 rows, 3 validations), so that 48 runs fit 12 minutes on 2 cores. Same zoo
    # (the source fields are the cpu preset's, so its cache is shared). Rates re-picked by `lr-grid` under this
    # budget (benchmarks/lr_grid_demo.json, x1..x100 on STS-B and RTE): target x10, ScaLearn x1, AdapterFusion x30,
    # fine-tuning x30.
    # ω's own rate (omega_lr) x30 the paper's 6e-3, the head keeping 6e-3: picked by `lr-grid --groups omega` on
    # validation loss over the four variants on STS-B and MRPC (benchmarks/lr_grid_demo_omega.json; x10 within 0.1%),
    # so that ω can travel lr·Σ(schedule) = 0.18 · 12.5 = 2.25 in 24 steps instead of 0.075.
    "demo": _CPU.with_(name="demo", target_lr=3e-3, target_epochs=3, transfer_epochs=3, finetune_lr=6e-4,
                       omega_lr=0.18),
    # The paper's protocol on a GPU.
    "paper": Preset(name="paper", model="roberta-base", task_max_length=(("multirc", 324),)),
    # Colab's free T4, one class session (the notebooks' full mode): roberta-base, AdapterHub's pf adapters as the
    # sources (no stage 1 for them), targets cut to 2,000 rows x 3 epochs (189 stage-2 steps), so that each notebook
    # fits 15 minutes on a T4 by the estimate in notebooks/README.md (benchmarks/t4_estimate.py). ω's travel bound
    # omega_lr·(T+1)/2 = 0.06·(189+1)/2 = 5.7 against the paper's 6e-3·(2,130+1)/2 = 6.4 for RTE (71 steps x 30
    # epochs); few-shot: 0.06·(60+1)/2 = 1.8 (paper 6e-3·(1,000+1)/2 = 3.0). The head keeps the paper's 6e-3; stage-1
    # and fusion rates are the paper's x3 and x10 for the short budgets: chosen, not yet tuned on a GPU.
    "colab": Preset(
        name="colab", model="roberta-base", task_max_length=(("multirc", 324),), max_validation=500,
        source_max_train=2000, source_lr=1e-3, source_epochs=2, source_patience=None,
        max_train=2000, target_lr=1e-3, target_epochs=3, target_patience=None,
        transfer_lr=6e-3, omega_lr=6e-2, transfer_epochs=3, fusion_lr=5e-4, fusion_patience=None,
        few_shot_steps=60, few_shot_patience=5, few_shot_max_validation=64,
    ),
}


def preset_from_dict(fields: dict) -> Preset:
    """A Preset from a saved config.json mapping; fields of older versions that no longer exist are ignored."""
    from dataclasses import fields as dc_fields

    known = {f.name for f in dc_fields(Preset)}
    fields = {"attention": "sdpa", **fields}  # saved before the field existed: transformers' default kernel then
    return Preset(**{k: v for k, v in fields.items() if k in known})


def get_preset(name: Union[str, Preset]) -> Preset:
    """The named preset (a Preset is returned as it is), or a ValueError listing the valid names."""
    if isinstance(name, Preset):
        return name
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}") from None
