"""`scalearn-lite bench`'s report: the statistics of a configuration's step times, the machine, the time / memory /
FLOP ratios between configurations against their targets (benchmarks/README.md), the setup described, the
printout. `setup` below is a bench.Setup.
"""
from __future__ import annotations

import os
import platform
import statistics
from typing import Dict, List, Optional

import torch

from .models import model_id
from .provenance import cpu_model, git_revision

# (ratio, comparison, limit): the speed and memory targets (benchmarks/README.md).
TARGETS = {
    "scalearn_vs_adapter": ("<=", 1.25),
    "scalearn_vs_floor": ("<=", 1.35),
    "growth_s1_to_s32": ("<=", 1.6),
    "fusion_vs_scalearn": (">=", 3.0),
    "loop_vs_batched": (">=", 1.3),
    "memory_scalearn_vs_adapter": ("<=", 1.3),
}


def stats(seconds: List[float]) -> dict:
    return {"median_ms": 1e3 * statistics.median(seconds), "min_ms": 1e3 * min(seconds),
            "times_ms": [1e3 * x for x in seconds]}


def machine_info(setup) -> dict:
    info = {"cpu": cpu_model(), "git": git_revision(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform(),
            "device": setup.device.type, "dtype": "bf16 autocast" if setup.amp else "fp32", "gpu": None}
    try:
        import adapters
        import transformers

        info.update(transformers=transformers.__version__, adapters=adapters.__version__)
    except ImportError:
        pass
    if setup.device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(setup.device)
    return info


def load_average() -> Optional[List[float]]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def ratios(train: Dict[str, dict], infer: Dict[str, dict], part: Dict[str, dict], setup,
           stat: str = "median_ms") -> dict:
    """Time (memory, FLOP) ratios between configurations; > 1 means the first named one is slower (larger)."""
    k, lo, hi = setup.compare, min(setup.sources), max(setup.sources)
    ms = lambda name: train[name][stat]
    mem = lambda name: train[name]["peak_mb"]
    flop = lambda name: train[name]["gflop"]
    out = {
        "scalearn_vs_adapter": ms(f"scalearn-S{k}") / ms("adapter"),
        "scalearn_vs_floor": ms(f"scalearn-S{k}") / ms("floor"),
        "adapter_vs_floor": ms("adapter") / ms("floor"),
        "growth_s1_to_s32": ms(f"scalearn-S{hi}") / ms(f"scalearn-S{lo}"),
        "fusion_vs_scalearn": ms(f"fusion-S{k}") / ms(f"scalearn-S{k}"),
        "loop_vs_batched": part[f"S{k}"]["loop"][stat] / part[f"S{k}"]["batched"][stat],
        "loop_vs_batched_step": ms(f"loop-S{k}") / ms(f"scalearn-S{k}"),
        "memory_scalearn_vs_adapter": mem(f"scalearn-S{k}") / mem("adapter"),
        "memory_fusion_vs_scalearn": mem(f"fusion-S{k}") / mem(f"scalearn-S{k}"),
        "inference_scalearn_vs_adapter": infer[f"scalearn-S{k}"][stat] / infer["adapter"][stat],
        # the same comparisons in matmul FLOPs: what the times would be if only matmuls cost (no noise)
        "flops_scalearn_vs_adapter": flop(f"scalearn-S{k}") / flop("adapter"),
        "flops_scalearn_vs_floor": flop(f"scalearn-S{k}") / flop("floor"),
        "flops_growth_s1_to_s32": flop(f"scalearn-S{hi}") / flop(f"scalearn-S{lo}"),
        "flops_fusion_vs_scalearn": flop(f"fusion-S{k}") / flop(f"scalearn-S{k}"),
    }
    if f"bf16-S{k}" in train:  # < 1: bf16 autocast is faster than fp32 on this CPU
        out["cpu_bf16_vs_fp32"] = ms(f"bf16-S{k}") / ms(f"scalearn-S{k}")
    if f"bf16-cast-S{k}" in train:  # < 1: casting the frozen weights once per fit beats autocast's per-call casts
        out["cpu_bf16_frozen_cast_vs_autocast"] = ms(f"bf16-cast-S{k}") / ms(f"bf16-S{k}")
    return out


def check_targets(r: dict) -> dict:
    out = {}
    for key, (op, limit) in TARGETS.items():
        met = r[key] <= limit if op == "<=" else r[key] >= limit
        out[key] = {"value": r[key], "target": f"{op} {limit}", "met": bool(met)}
    return out


def print_report(res: dict) -> None:
    s, m = res["setup"], res["machine"]
    print(f"\nscalearn-lite bench: {s['model_id']} ({s['num_layers']} layers, d={s['hidden_size']}, r={s['rank']}), "
          f"batch {s['batch_size']} x {s['seq_len']} tokens, {m['device']} {m['dtype']}, {m['torch_threads']} "
          f"threads, median of {s['repeats']} interleaved rounds")
    print(f"machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']}; load average before/after "
          f"{res['load_average']['start']} / {res['load_average']['end']}")
    adapter, floor = res["train"]["adapter"]["median_ms"], res["train"]["floor"]["median_ms"]
    head = (f"{'training step (fwd + bwd + AdamW)':<38}{'ms':>9}{'min ms':>9}{'x adapter':>11}{'x floor':>9}"
            f"{'trainable':>12}{'peak MB':>10}{'GFLOP':>8}")
    print("\n" + head + "\n" + "-" * len(head))
    for r in res["train"].values():
        ms = r["median_ms"]
        print(f"{r['label']:<38}{ms:>9.1f}{r['min_ms']:>9.1f}{ms / adapter:>11.3f}{ms / floor:>9.3f}"
              f"{r['trainable_params']:>12,}{r['peak_mb']:>10.1f}{r['gflop']:>8.1f}")
    print(f"\n{'inference (eval, no grad)':<38}{'ms/batch':>9}{'examples/s':>12}")
    for name, r in res["inference"].items():
        print(f"{res['train'][name]['label']:<38}{r['median_ms']:>9.1f}{r['examples_per_s']:>12.1f}")
    print(f"\n{'adapter part only (one bank, fwd + bwd)':<38}{'batched ms':>11}{'loop ms':>9}{'loop/batched':>14}")
    for name, r in res["adapter_part"].items():
        b, l = r["batched"]["median_ms"], r["loop"]["median_ms"]
        print(f"{'S=' + name[1:]:<38}{b:>11.2f}{l:>9.2f}{l / b:>14.2f}")
    print(f"\n{'ratio (S=' + str(s['compare_sources']) + ')':<38}{'median':>9}{'min':>9}{'target':>10}")
    for key, v in res["ratios"].items():
        t, best = res["targets"].get(key), res["ratios_min"].get(key)
        mark = f"{t['target']:>10}  {'met' if t['met'] else 'MISSED'}" if t else ""
        print(f"{key:<38}{v:>9.3f}{'' if best is None else f'{best:.3f}':>9}{mark}")
    print(f"\nwall time {res['wall_seconds']:.0f} s")


def describe(setup, config) -> dict:
    cuda = setup.device.type == "cuda"
    return {
        "model": setup.model, "model_id": model_id(setup.model, setup.num_layers), "random_weights": setup.random_weights,
        "num_layers": config.num_hidden_layers, "hidden_size": config.hidden_size,
        "rank": max(1, config.hidden_size // 16), "batch_size": setup.batch_size, "seq_len": setup.seq_len,
        "repeats": setup.repeats, "warmup": setup.warmup, "sources": setup.sources, "compare_sources": setup.compare,
        "growth_sources": [min(setup.sources), max(setup.sources)], "seed": setup.seed, "optimizer": "AdamW lr 1e-4",
        "scalearn_variant": "scalearn (vector ω per layer, ω dropout 0.3)",
        "floor": "frozen base, no adapters; the head trains and the word-embedding output requires grad, so "
                 "backward runs through every layer",
        "timing": "median (and min) over interleaved rounds: one step of every configuration per round, start "
                  "rotated, after warm-up",
        "memory": "peak live tensor bytes during a configuration's first training step above those live before it "
                  "(weights excluded; activations, grads, optimiser state included), from "
                  + ("torch.cuda.max_memory_allocated" if cuda else "torch.profiler profile_memory allocation events"),
        "gflop": "matmul FLOPs of one training step (forward + backward), torch.profiler with_flops",
    }
