"""Where a model runs and in what precision: one rule for every place that runs one.

* Device: a model runs where its parameters are, and its inputs are moved there (`model_device`, `to_device`);
  a model that is built or loaded for inference goes to `default_device()` (CUDA when there is one).
* Precision (`precision_for`): on CUDA, bf16 autocast on GPUs with native bf16 (compute capability >= 8.0:
  Ampere, Hopper, ...), fp16 autocast + a gradient scaler below (T4, V100: `torch.cuda.is_bf16_supported()` is
  true there through emulation, which runs at fp32 speed or slower); on the CPU the preset's cpu_precision.
* CPU bf16: "auto" means bf16 only where the CPU has native bf16 units (`resolve_cpu_precision`); under it the
  frozen linear layers are cast once per block (`frozen_linears_cast`), bit-identical to autocast's own casts.
"""
from __future__ import annotations

from contextlib import contextmanager, nullcontext
from functools import lru_cache
from pathlib import Path
from typing import Mapping, Union

import torch

from .config import CPU_PRECISIONS

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
    is resolved first by resolve_cpu_precision); any other device: fp32."""
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


# ------------------------------------------------------------------------------ CPU bf16
@lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """True where the CPU computes bf16 natively (Linux /proc/cpuinfo: AMX tiles or AVX-512 BF16): there bf16
    matmuls beat fp32 (an MRPC stage-1 step: 0.53 s bf16 vs 1.23 s fp32 on a 2-core AMD EPYC with avx512_bf16)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def resolve_cpu_precision(cpu_precision: str) -> str:
    """"fp32" or "bf16": what a CPU run computes in; "auto" is bf16 only on CPUs with native bf16 units
    (elsewhere bf16 is emulated and slower than fp32)."""
    if cpu_precision not in CPU_PRECISIONS:
        raise ValueError(f"cpu_precision must be one of {CPU_PRECISIONS}, got {cpu_precision!r}")
    if cpu_precision == "auto":
        return "bf16" if cpu_has_bf16() else "fp32"
    return cpu_precision


def cpu_bf16(device_type: str, cpu_precision: str) -> bool:
    """Whether a model on `device_type` computes under CPU bf16 autocast with this cpu_precision setting."""
    return device_type == "cpu" and resolve_cpu_precision(cpu_precision) == "bf16"


def cast_frozen_linears(model, dtype=torch.bfloat16) -> list:
    """Give every frozen fp32 nn.Linear of `model` (weight and bias without grad) its weight and bias in `dtype`;
    returns what restore_linears needs to put the fp32 tensors back. Trainable or already cast layers: unchanged."""
    swapped = []
    for module in model.modules():
        if not isinstance(module, torch.nn.Linear) or module.weight.dtype != torch.float32:
            continue
        if any(t is not None and t.requires_grad for t in (module.weight, module.bias)):
            continue
        swapped.append((module, module.weight, module.bias))
        module.weight = torch.nn.Parameter(module.weight.detach().to(dtype), requires_grad=False)
        if module.bias is not None:
            module.bias = torch.nn.Parameter(module.bias.detach().to(dtype), requires_grad=False)
    return swapped


def restore_linears(swapped: list) -> None:
    """Undo cast_frozen_linears: the very fp32 tensors are back."""
    for module, weight, bias in swapped:
        module.weight, module.bias = weight, bias


@contextmanager
def frozen_linears_cast(model, device_type: str, cpu_precision: str):
    """CPU bf16: within the block the frozen nn.Linear layers hold bf16 weights (cast_frozen_linears), cast once,
    where autocast would cast them again at every call (its cast cache keeps trainable leaves only, and only for
    one autocast block). Autocast makes exactly these bf16 tensors itself, so results are bit-identical
    (tests/test_train.py); the cpu preset's demo runs (STS-B, RTE) took 1–2% less time
    (benchmarks/frozen_cast_cpu.py). The fp32 tensors are back on exit. CUDA or fp32 on CPU: nothing changes."""
    if not cpu_bf16(device_type, cpu_precision):
        yield
        return
    swapped = []
    try:
        swapped = cast_frozen_linears(model, torch.bfloat16)
        yield
    finally:
        restore_linears(swapped)


def precision_used(cpu_precision: str) -> str:
    """A label for metrics.json: "cuda bf16", "cuda fp16", "cpu bf16" or "cpu fp32" (device.precision_for)."""
    if torch.cuda.is_available():
        return "cuda " + precision_for("cuda")
    return "cpu " + resolve_cpu_precision(cpu_precision)
