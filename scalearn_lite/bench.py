"""`scalearn-lite bench`: training-step time, inference throughput and peak memory, side by side.

Everything runs in one process, on one base model, one batch of random token ids (full attention mask)
and random labels. Configurations (each its own copy of the same base weights and the same new head):

    floor          the frozen base model, no adapters; only the head trains, and the word-embedding output
                   requires grad (`enable_input_require_grads`), so backprop runs through every layer
    adapter        stage 1: one seq_bn adapter + head (adapters' add_adapter / train_adapter)
    scalearn-S{k}  ScaLearn (vector ω per layer) + head over k frozen random seq_bn sources, batched bank
    loop-S{k}      the same ScaLearn with `set_mode("loop")`: one adapter at a time, as Fuse and the paper run them
    fusion-S{k}    AdapterFusion (adapters' Fuse, "dynamic", its value regulariser in the loss) + head
    bf16-S{k}      (CPU only) scalearn-S{k} under bf16 autocast: what `--cpu-precision bf16` / auto buys here
    bf16-cast-S{k} (CPU only) bf16-S{k} with the frozen Linear weights cast to bf16 once (what fit() does), not by
                   autocast at every call: the same numbers, less time

A training step is forward + cross-entropy + backward + AdamW step + zero_grad. Configurations are
interleaved: every round runs one step of each (the start rotates by one each round), after warm-up
rounds; the median (and the min) over rounds is reported. Memory is the peak of live tensor bytes during a
configuration's first training step above what was live before it (activations, gradients, optimiser
state; the model weights excluded): on CUDA `max_memory_allocated - memory_allocated`, on CPU the same
quantity from the allocation events of `torch.profiler(profile_memory=True)`. It does not depend on the
allocator or on the other models held by the process, so the configurations can share one process (a
cross-check against peak-RSS deltas in fresh processes gave the same ScaLearn/adapter ratio; RSS adds
allocator overhead on top). The same untimed first step also counts matmul FLOPs (`with_flops=True`):
the noise-free, machine-independent side of every time ratio.
"""
from __future__ import annotations

import contextlib
import copy
import math
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F

from .bench_report import check_targets, describe, load_average, machine_info, print_report, ratios, stats
from .config import VARIANTS, get_preset
from .files import write_json
from .models import load_base, quiet_activation
from .params import random_base
from .scaling import AdapterWeights, ScaLearn, SourceBank, attach

HEAD = "bench"
DEFAULT_SOURCES = "1,2,4,8,16,32"


@dataclass
class Setup:
    """What every configuration shares."""

    model: str
    num_layers: Optional[int]
    batch_size: int
    seq_len: int
    device: torch.device
    sources: List[int]  # S values of the ScaLearn sweep
    compare: int  # S of the loop / fusion / inference / adapter-part comparisons
    repeats: int
    warmup: int
    seed: int = 0
    random_weights: bool = False  # random init at the model's shapes (offline GPU check: roberta-base, no download)

    @property
    def amp(self) -> Optional[torch.dtype]:
        return torch.bfloat16 if self.device.type == "cuda" else None

    def autocast(self):
        return torch.autocast("cuda", dtype=self.amp) if self.amp else contextlib.nullcontext()


def make_setup(*, device: str = "cpu", preset: Optional[str] = None, model: Optional[str] = None,
               batch_size: Optional[int] = None, seq_len: Optional[int] = None, repeats: int = 3, warmup: int = 1,
               sources=DEFAULT_SOURCES, compare_sources: Optional[int] = None, seed: int = 0,
               random_weights: bool = False) -> Setup:
    """Check the benchmark's settings and fill the defaults from the preset (cpu on CPU, paper on CUDA)."""
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but torch sees no CUDA device; use --device cpu")
    chosen = get_preset(preset or ("paper" if dev.type == "cuda" else "cpu")).with_(model=model)
    try:
        counts = sorted({int(s) for s in (sources.split(",") if isinstance(sources, str) else sources)
                         if str(s).strip()})
    except ValueError:
        raise ValueError(f"--sources must be comma-separated integers, got {sources!r}") from None
    if not counts or min(counts) < 1:
        raise ValueError(f"--sources needs numbers >= 1, got {sources!r}")
    compare = compare_sources or (8 if 8 in counts else max(counts))
    if compare not in counts:
        raise ValueError(f"--compare-sources {compare} must be one of --sources {counts}")
    if repeats < 1:
        raise ValueError(f"--repeats must be >= 1, got {repeats}")
    batch = batch_size or chosen.batch_size
    seq = seq_len or chosen.max_length
    if batch < 1 or seq < 2:
        raise ValueError(f"--batch-size must be >= 1 and --seq-len >= 2, got {batch} and {seq}")
    return Setup(chosen.model, chosen.num_layers, batch, seq, dev, counts, compare, repeats, max(1, warmup), seed,
                 random_weights)


# --------------------------------------------------------------------------------- configurations
@dataclass
class Batch:
    input_ids: torch.Tensor  # (B, T) random token ids
    attention_mask: torch.Tensor  # (B, T) all ones
    labels: torch.Tensor  # (B,) random classes


@dataclass
class Trial:
    """One configuration: a model, its trainable parameters and their optimiser."""

    name: str
    label: str  # for the table
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    trainable: int  # trainable parameters (head included)
    mode: Optional[str] = None  # ScaLearn bank mode set before every step ("batched" / "loop")
    extra_loss: Optional[Callable[[], torch.Tensor]] = None  # AdapterFusion's value regulariser
    times: List[float] = field(default_factory=list)  # seconds per timed step
    peak_bytes: Optional[int] = None  # peak live tensor bytes of the first step above what was live before
    flops: Optional[int] = None  # matmul FLOPs of one step (forward + backward), counted by torch.profiler
    cpu_bf16: bool = False  # forward under torch.autocast("cpu", bfloat16) instead of the setup's precision


def random_batch(config, setup: Setup) -> Batch:
    """Random token ids (away from the low special ids) with a full mask, and random binary labels."""
    g = torch.Generator().manual_seed(setup.seed)
    low = min(1000, config.vocab_size // 2)
    ids = torch.randint(low, config.vocab_size, (setup.batch_size, setup.seq_len), generator=g)
    labels = torch.randint(0, 2, (setup.batch_size,), generator=g)
    d = setup.device
    return Batch(ids.to(d), torch.ones_like(ids).to(d), labels.to(d))


def random_sources(hidden: int, layers: int, num_sources: int, seed: int) -> List[List[AdapterWeights]]:
    """[layer][source] random non-zero seq_bn weights, r = hidden / 16 (no training needed for timing)."""
    g = torch.Generator().manual_seed(seed)
    r = max(1, hidden // 16)
    rnd = lambda *shape: torch.randn(*shape, generator=g) * 0.02
    return [[AdapterWeights(rnd(r, hidden), rnd(r), rnd(hidden, r), rnd(hidden)) for _ in range(num_sources)]
            for _ in range(layers)]


def _finish(name: str, label: str, model, setup: Setup, **kw) -> Trial:
    """Add the shared head (seeded), move to the device, collect trainables and build AdamW."""
    torch.manual_seed(setup.seed)
    model.add_classification_head(HEAD, num_labels=2, overwrite_ok=True)
    for p in model.heads[HEAD].parameters():
        p.requires_grad_(True)
    model.to(setup.device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    return Trial(name, label, model, torch.optim.AdamW(params, lr=1e-4), sum(p.numel() for p in params), **kw)


def floor_trial(base, setup: Setup) -> Trial:
    model = copy.deepcopy(base)
    for p in model.parameters():
        p.requires_grad_(False)
    model.enable_input_require_grads()  # the embedding output requires grad: backward reaches layer 0
    return _finish("floor", "floor (frozen, grad to embeddings)", model, setup)


def adapter_trial(base, setup: Setup) -> Trial:
    from .sources import seq_bn_config

    model = copy.deepcopy(base)
    model.add_adapter("adapter", config=seq_bn_config())
    model.train_adapter("adapter")
    return _finish("adapter", "adapter (seq_bn, stage 1)", model, setup)


def scalearn_trial(base, setup: Setup, num_sources: int, mode: str = "batched", cpu_bf16: bool = False,
                   frozen_cast: bool = False) -> Trial:
    model = copy.deepcopy(base)
    cfg = model.config
    layers = random_sources(cfg.hidden_size, cfg.num_hidden_layers, num_sources, setup.seed + num_sources)
    sl = attach(model, ScaLearn(VARIANTS["scalearn"], [f"s{i}" for i in range(num_sources)], layers, cfg.hidden_size))
    for p in model.parameters():
        p.requires_grad_(False)
    sl.omega.weight.requires_grad_(True)
    name, label = (f"scalearn-S{num_sources}", f"ScaLearn S={num_sources}") if mode == "batched" else \
        (f"loop-S{num_sources}", f"ScaLearn S={num_sources}, loop")
    if cpu_bf16:
        name, label = f"bf16-S{num_sources}", label + ", CPU bf16"
    if frozen_cast:  # the frozen layers keep bf16 weights for the whole benchmark, as for a whole fit()
        from .device import cast_frozen_linears

        cast_frozen_linears(model, torch.bfloat16)
        name, label = f"bf16-cast-S{num_sources}", label + ", cast once"
    return _finish(name, label, model, setup, mode=mode, cpu_bf16=cpu_bf16)


def fusion_trial(base, setup: Setup, num_sources: int) -> Trial:
    from adapters.composition import Fuse
    from .sources import seq_bn_config

    model = copy.deepcopy(base)
    torch.manual_seed(setup.seed + num_sources)
    names = [f"s{i}" for i in range(num_sources)]
    for n in names:
        model.add_adapter(n, config=seq_bn_config())
    fuse = Fuse(*names)
    model.add_adapter_fusion(fuse, "dynamic")
    model.train_adapter_fusion(fuse)
    return _finish(f"fusion-S{num_sources}", f"AdapterFusion S={num_sources}", model, setup,
                   extra_loss=model.get_fusion_regularization_loss)


def build_trials(base, setup: Setup) -> List[Trial]:
    k = setup.compare
    with quiet_activation():  # adapters warns "none are activated" before train_adapter activates them
        bf16 = [scalearn_trial(base, setup, k, cpu_bf16=True), scalearn_trial(base, setup, k, cpu_bf16=True,
                frozen_cast=True)] if setup.device.type == "cpu" else []
        return ([floor_trial(base, setup), adapter_trial(base, setup)]
                + [scalearn_trial(base, setup, s) for s in setup.sources]
                + [scalearn_trial(base, setup, k, mode="loop"), fusion_trial(base, setup, k)] + bf16)


# ----------------------------------------------------------------------------------- measuring
def train_step(trial: Trial, batch: Batch, setup: Setup) -> None:
    """Forward + loss + backward + AdamW step + zero_grad on the trial's trainable parameters."""
    if trial.mode is not None:
        trial.model.scalearn.set_mode(trial.mode)
    with torch.autocast("cpu", dtype=torch.bfloat16) if trial.cpu_bf16 else setup.autocast():
        logits = trial.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, head=HEAD).logits
    loss = F.cross_entropy(logits.float(), batch.labels)
    if trial.extra_loss is not None:
        loss = loss + trial.extra_loss()
    loss.backward()
    trial.optimizer.step()
    trial.optimizer.zero_grad(set_to_none=True)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], None], device: torch.device) -> float:
    """Seconds one call of `fn` takes (device work included)."""
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


@contextlib.contextmanager
def _quiet_stderr():
    """Kineto prints a line on every profiler start/stop; keep the table readable."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def profile_step(fn: Callable[[], None], device: torch.device) -> Tuple[int, int]:
    """(peak bytes of live tensors while `fn` runs above those live when it starts, matmul FLOPs of `fn`)."""
    from torch.profiler import ProfilerActivity, profile

    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=not cuda, with_flops=True) as prof:
        fn()
        _sync(device)
    flops = sum(e.flops for e in prof.key_averages())
    if cuda:
        return torch.cuda.max_memory_allocated(device) - before, flops
    # every allocation (+bytes) and free (-bytes) of the CPU allocator, in time order
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events() if e.name() == "[memory]")
    live = peak = 0
    for _, nbytes in events:
        live += nbytes
        peak = max(peak, live)
    return peak, flops


def interleave(trials: List[Trial], fn: Callable[[Trial], None], setup: Setup, progress: Callable[[str], None]):
    """Memory round, warm-up rounds, then timed rounds; each round runs every trial once, start rotated."""
    n = len(trials)
    for t in trials:
        t.times.clear()
    for rnd in range(setup.warmup + setup.repeats):
        order = trials[rnd % n:] + trials[: rnd % n]
        for t in order:
            if rnd == 0:
                t.peak_bytes, t.flops = profile_step(lambda: fn(t), setup.device)
            elif rnd < setup.warmup:
                fn(t)
            else:
                t.times.append(timed(lambda: fn(t), setup.device))
        kind = "memory + warm-up" if rnd == 0 else "warm-up" if rnd < setup.warmup else "timed"
        progress(f"round {rnd + 1}/{setup.warmup + setup.repeats} ({kind}) done")


def inference(trials: List[Trial], batch: Batch, setup: Setup) -> Dict[str, dict]:
    """Eval mode, no grad: ms per batch and examples/s, interleaved like training."""
    def forward(t: Trial):
        with torch.inference_mode(), setup.autocast():
            t.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, head=HEAD)

    for t in trials:
        t.model.eval()
    times = {t.name: [] for t in trials}
    for rnd in range(1 + setup.repeats):
        for t in trials[rnd % len(trials):] + trials[: rnd % len(trials)]:
            s = timed(lambda: forward(t), setup.device)
            if rnd:
                times[t.name].append(s)
    for t in trials:
        t.model.train()
    return {name: {**stats(v), "examples_per_s": setup.batch_size / statistics.median(v)}
            for name, v in times.items()}


def adapter_part(config, setup: Setup) -> Dict[str, dict]:
    """Only the bank: Σ_i ω_i ⊙ A_i(h) forward + backward (to h and ω) on h (B, T, d), batched vs loop, per S."""
    d = config.hidden_size
    g = torch.Generator().manual_seed(setup.seed)
    h = torch.randn(setup.batch_size, setup.seq_len, d, generator=g).to(setup.device).requires_grad_(True)  # (B, T, d)
    grad = torch.randn(setup.batch_size, setup.seq_len, d, generator=g).to(setup.device)  # (B, T, d)
    out = {}
    reps = max(10, 4 * setup.repeats)
    for s in setup.sources:
        bank = SourceBank(random_sources(d, 1, s, setup.seed + s)[0]).to(setup.device)
        omega = torch.nn.Parameter(torch.full((s, d), 2.0 / s, device=setup.device))  # (S, d)

        def step(mode: str):
            bank.mode = mode
            with setup.autocast():
                y = bank(h, omega)  # (B, T, d)
            y.backward(grad.to(y.dtype))
            h.grad = omega.grad = None

        times = {"batched": [], "loop": []}
        for rnd in range(3 + reps):
            for mode in (("batched", "loop") if rnd % 2 == 0 else ("loop", "batched")):
                sec = timed(lambda: step(mode), setup.device)
                if rnd >= 3:
                    times[mode].append(sec)
        out[f"S{s}"] = {mode: stats(v) for mode, v in times.items()}
    return out


def benchmark(setup: Setup, progress: Callable[[str], None] = print) -> dict:
    """Run every measurement and return the full result (what --json writes)."""
    start, load_start = time.perf_counter(), load_average()
    base = random_base(setup.model, setup.num_layers, setup.seed) if setup.random_weights else \
        load_base(setup.model, setup.num_layers)[0]
    config = base.config
    batch = random_batch(config, setup)
    trials = build_trials(base, setup)
    progress(f"built {len(trials)} configurations: {', '.join(t.name for t in trials)}")
    interleave(trials, lambda t: train_step(t, batch, setup), setup, progress)
    by_name = {t.name: t for t in trials}
    infer = inference([by_name["adapter"], by_name[f"scalearn-S{setup.compare}"]], batch, setup)
    progress("inference done")
    part = adapter_part(config, setup)
    progress("adapter part done")
    train = {t.name: {"label": t.label, **stats(t.times), "trainable_params": t.trainable,
                      "peak_mb": t.peak_bytes / 2**20, "gflop": t.flops / 1e9} for t in trials}
    r = ratios(train, infer, part, setup)
    best = ratios(train, infer, part, setup, "min_ms")
    return {
        "machine": machine_info(setup),
        "setup": describe(setup, config),
        "train": train,
        "inference": infer,
        "adapter_part": part,
        "ratios": r,
        "targets": check_targets(r),
        # the time ratios on each configuration's fastest step: robust to noise that only adds time
        "ratios_min": {k: v for k, v in best.items() if not k.startswith(("memory", "flops"))},
        "load_average": {"start": load_start, "end": load_average()},
        "wall_seconds": time.perf_counter() - start,
    }


def run(setup: Setup, *, threads: Optional[int] = None, json_path=None) -> dict:
    """Measure every configuration of `setup` side by side, print the report, write `json_path` if given."""
    if threads:
        torch.set_num_threads(threads)
    say = lambda msg: print(f"[bench] {msg}", file=sys.stderr, flush=True)
    res = benchmark(setup, say)
    bad = [k for k, v in res["ratios"].items() if not (isinstance(v, float) and math.isfinite(v) and v > 0)]
    if bad:
        raise RuntimeError(f"non-finite or non-positive ratios {bad}: a measurement failed")
    print_report(res)
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        write_json(Path(json_path), res)
        print(f"→ {json_path}")
    return res
