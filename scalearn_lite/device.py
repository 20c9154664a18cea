"""Where a model runs and in what precision: one rule for every place that runs one.

* Device: a model runs where its parameters are, and its inputs are moved there (`model_device`, `to_device`);
  a model that is built or loaded for inference goes to `default_device()` (CUDA when there is one).
* Precision (`precision_for`): on CUDA, bf16 autocast on GPUs with native bf16 (compute capability >= 8.0:
  Ampere, Hopper, ...), fp16 autocast + a gradient scaler below (T4, V100: `torch.cuda.is_bf16_supported()` is
  true there through emulation, which runs at fp32 speed or slower); on the CPU the preset's cpu_precision.
"""
from __future__ import annotations

from contextlib import nullcontext
from typing import Mapping, Union

import torch

Device = Union[str, torch.device]
# compute capability from which a GPU has bf16 tensor cores (Ampere: 8.0); below it bf16 is emulated
NATIVE_BF16_CAPABILITY = (8, 0)
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def default_device() -> torch.device:
    """Where models are trained and loaded: the current CUDA device when there is one, else the CPU."""
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def precision_for(device: Device, cpu_precision: str = "fp32") -> str:
    """"bf16", "fp16" or "fp32": what a model on `device` computes in. CUDA: bf16 at compute capability >= 8.0,
    fp16 (with a gradient scaler in training) below; CPU: `cpu_precision`, "fp32" or "bf16" (a preset's "auto"
    is resolved first by train.resolve_cpu_precision); any other device: fp32."""
    device = torch.device(device)
    if device.type == "cuda":
        capability = tuple(torch.cuda.get_device_capability(device))
        return "bf16" if capability >= NATIVE_BF16_CAPABILITY else "fp16"
    if device.type == "cpu":
        if cpu_precision not in ("fp32", "bf16"):
            raise ValueError(f"cpu_precision must be resolved to 'fp32' or 'bf16' here, got {cpu_precision!r}")
        return cpu_precision
    return "fp32"


def autocast(device: Device, cpu_precision: str = "fp32"):
    """An inference autocast context for a model on `device` in precision_for's precision (fp32: no autocast)."""
    device = torch.device(device)
    precision = precision_for(device, cpu_precision)
    if precision == "fp32" or device.type not in ("cuda", "cpu"):
        return nullcontext()
    return torch.autocast(device.type, dtype=DTYPES[precision])


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of a model's parameters (its first one; a model here lives on one device)."""
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def to_device(batch, device: Device):
    """A batch (a mapping of tensors, a tensor, or anything else) with every tensor on `device`."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, Mapping):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch
