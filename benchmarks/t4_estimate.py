"""Estimated wall time of each notebook in full mode (the colab preset) on Colab's T4: FLOPs × steps / throughput.

    python benchmarks/t4_estimate.py [--tflops 20] [--data-dir ../shared/data] [--markdown]

* FLOPs per token of a training step (ScaLearn at S = 8, a stage-1 adapter, AdapterFusion at S = 8): torch.profiler's
  matmul count of one step at roberta-base shapes, from `scalearn-lite bench --device cpu --preset paper
  --random-weights --batch-size 2 --seq-len 128 --sources 8 --repeats 1 --threads 1 --json
  benchmarks/flops_roberta_base.json`, divided by the step's 2 × 128 tokens.
* FLOPs per token of a forward pass (evaluation, notebook 02's probe features, the head-only and fixed-ω baselines,
  whose frozen encoder needs no backward): counted here by the same profiler on roberta-base's shapes (random
  weights, no download), no grad.
* Every row is counted at the full 128 tokens (batches are padded to their longest row, so this is an upper bound);
  every run takes its whole step budget (no early stop); rows per split are read from the local data with the colab
  preset's caps (train 2,000, validation 500, few-shot validation 64).
* Throughput: an assumed effective --tflops (default 20 TFLOP/s: about 30% of the T4's 65 TFLOP/s fp16 tensor-core
  peak, under fp16 autocast, device.precision_for). Not measured: no T4 was available.
* Fixed costs, assumed: 10 s per run (loading roberta-base from disk, the source adapters, encoding), 60 s per
  notebook (imports, setup; the first notebook of a session also downloads roberta-base and the pf adapters).
  Notebook 02's probe heads train on the CPU: timed here on this machine's CPU for one ω setting (not Colab's).
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TOKENS = 128
BATCH = 32
RUN_OVERHEAD_S, NOTEBOOK_OVERHEAD_S = 10.0, 60.0


def forward_flops_per_token() -> float:
    """Matmul FLOPs per token of roberta-base's forward pass (profiler count, random weights, batch 2 × 128)."""
    import torch

    from scalearn_lite.bench import profile_step
    from scalearn_lite.params import random_base

    base = random_base("roberta-base", None).eval()
    ids = torch.randint(5, 1000, (2, TOKENS))
    with torch.no_grad():
        _, flops = profile_step(lambda: base.base_model(input_ids=ids, attention_mask=torch.ones_like(ids)),
                                torch.device("cpu"))
    return flops / (2 * TOKENS)


def step_flops_per_token(bench_json: Path) -> dict:
    """{"scalearn", "adapter", "fusion"}: matmul FLOPs per token of one training step, from bench's profiler count."""
    bench = json.loads(bench_json.read_text())
    tokens = bench["setup"]["batch_size"] * bench["setup"]["seq_len"]
    s = bench["setup"]["compare_sources"]
    train = bench["train"]
    per_token = {kind: train[name]["gflop"] * 1e9 / tokens
                 for kind, name in (("scalearn", f"scalearn-S{s}"), ("adapter", "adapter"), ("fusion", f"fusion-S{s}"))}
    return {**per_token, "sources": s}


def split_rows(task: str, data_dir, k_shot=None) -> dict:
    """Rows per split of a target under the colab preset (its caps), read from the local data."""
    from scalearn_lite.config import get_preset
    from scalearn_lite.data import load_task_data
    from scalearn_lite.tasks import get_task

    rows = load_task_data(get_task(task), get_preset("colab"), data_dir, k_shot=k_shot, seed=0)
    return {k: len(v) for k, v in rows.items()}


def head_seconds(rows: int, epochs: int) -> float:
    """Notebook 02: wall time of one probe head (probing.train_head) on `rows` × 768 features, on this CPU."""
    import torch

    from scalearn_lite.probing import train_head
    from scalearn_lite.tasks import get_task

    x, y = torch.randn(rows, 768), torch.randint(0, 2, (rows,))
    start = time.perf_counter()
    train_head(get_task("rte"), x, y, x[:249], y[:249], epochs=epochs)
    return time.perf_counter() - start


class Plan:
    """What one notebook computes: training tokens per kind of step, forward tokens, runs."""

    def __init__(self, name: str):
        self.name, self.train, self.forward, self.runs, self.cpu_s = name, {}, 0.0, 0, 0.0

    def fit(self, kind: str, rows: dict, epochs=None, steps=None, batch=BATCH, runs: int = 1) -> "Plan":
        """`runs` runs of a kind ("scalearn", "adapter", "fusion", "forward"): steps × batch rows trained, one
        validation pass per epoch and one test pass."""
        per_epoch = math.ceil(rows["train"] / batch)
        steps = steps if steps is not None else per_epoch * epochs
        epochs = math.ceil(steps / per_epoch)
        trained = steps * min(batch, rows["train"]) * TOKENS  # rows per step: the batch (an upper bound)
        if kind == "forward":
            self.forward += runs * trained
        else:
            self.train[kind] = self.train.get(kind, 0.0) + runs * trained
        self.forward += runs * (epochs * rows["validation"] + rows["test"]) * TOKENS
        self.runs += runs
        return self

    def seconds(self, flops: dict, fwd: float, tflops: float) -> dict:
        compute = (sum(flops[k] * t for k, t in self.train.items()) + fwd * self.forward) / (tflops * 1e12)
        fixed = self.runs * RUN_OVERHEAD_S + NOTEBOOK_OVERHEAD_S
        return {"notebook": self.name, "runs": self.runs, "pflop": (compute * tflops * 1e12) / 1e15,
                "gpu_s": compute, "cpu_s": self.cpu_s, "fixed_s": fixed, "total_s": compute + self.cpu_s + fixed}


def plans(data_dir) -> list:
    """The six notebooks' full-mode work, read off their parameter cells (fast/cpu/full values) and the preset."""
    from scalearn_lite.config import get_preset

    p = get_preset("colab")
    rte = split_rows("rte", data_dir)
    tgt, src = p.target_epochs, p.source_epochs
    out = []
    nb0 = Plan("00_quickstart").fit("adapter", rte, tgt).fit("scalearn", rte, p.transfer_epochs)
    nb0.forward += 200 * TOKENS  # run_contributions: 200 validation rows
    out.append(nb0)
    out.append(Plan("01_source_adapters").fit("adapter", rte, tgt).fit("forward", rte, p.transfer_epochs))
    probe = Plan("02_why_scaling").fit("adapter", rte, tgt)
    settings = 49  # GRID 7 × 7 (ω₁, ω₂); sweep_one's 7 values per source are points of the grid (cached)
    probe.forward += settings * sum(rte.values()) * TOKENS
    probe.runs += 1
    probe.cpu_s = settings * head_seconds(rte["train"], 20)  # HEAD_EPOCHS full = 20
    out.append(probe)
    seeds = 3  # SEEDS full = cpu's [0, 1, 2]
    # four variants; baselines adapter, head_only + fixed_omega + average (frozen encoder: forward only), adapterfusion
    out.append(Plan("03_scalearn_transfer").fit("scalearn", rte, p.transfer_epochs, runs=4 * seeds)
               .fit("adapter", rte, tgt, runs=seeds).fit("forward", rte, p.transfer_epochs, runs=3 * seeds)
               .fit("fusion", rte, p.transfer_epochs, runs=seeds))
    nb4 = (Plan("04_reading_the_heatmaps").fit("adapter", rte, tgt).fit("scalearn", rte, p.transfer_epochs, runs=4)
           .fit("fusion", rte, p.transfer_epochs))
    for task in ("rte", "mrpc", "stsb", "cola"):  # the target × source matrix: zoo sources, own adapters, one run each
        rows = split_rows(task, data_dir)
        nb4.fit("adapter", {**rows, "train": min(rows["train"], p.source_max_train)}, src)
        if task != "rte":
            nb4.fit("adapter", rows, tgt)
        nb4.fit("scalearn", rows, p.transfer_epochs)
    nb4.forward += (3 + 8) * rte["validation"] * TOKENS  # the ω scorer's table: learned, uniform, zero, 8 one-hot
    nb4.forward += 4 * 200 * TOKENS  # run_contributions: 200 validation rows per variant
    out.append(nb4)
    few = Plan("05_few_shot")
    for k in (4, 16, 32, 100):  # K_LIST full = cpu's; methods scalearn, adapter (own k-shot adapter), adapterfusion
        rows = split_rows("rte", data_dir, k_shot=k)
        batch = min(k, BATCH)
        few.fit("adapter", rows, steps=p.few_shot_steps, batch=batch, runs=seeds)
        few.fit("scalearn", rows, steps=p.few_shot_steps, batch=batch, runs=seeds)
        few.fit("fusion", rows, steps=p.few_shot_steps, batch=batch, runs=seeds)
    out.append(few)
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tflops", type=float, default=20.0, help="assumed effective T4 throughput (TFLOP/s)")
    ap.add_argument("--data-dir", default=str(HERE.parent.parent / "shared" / "data"))
    ap.add_argument("--bench-json", default=str(HERE / "flops_roberta_base.json"))
    ap.add_argument("--json", help="write the table here")
    args = ap.parse_args(argv)
    flops = step_flops_per_token(Path(args.bench_json))
    fwd = forward_flops_per_token()
    rows = [plan.seconds(flops, fwd, args.tflops) for plan in plans(args.data_dir)]
    print(f"MFLOP per token: forward {fwd / 1e6:.1f}, training step: ScaLearn S={flops['sources']} "
          f"{flops['scalearn'] / 1e6:.1f}, adapter {flops['adapter'] / 1e6:.1f}, AdapterFusion S={flops['sources']} "
          f"{flops['fusion'] / 1e6:.1f}; throughput {args.tflops:g} TFLOP/s (assumed)\n")
    print("| notebook | runs | PFLOP | GPU compute | CPU (probe heads) | fixed | total |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['notebook']} | {r['runs']} | {r['pflop']:.1f} | {r['gpu_s'] / 60:.1f} min | "
              f"{r['cpu_s'] / 60:.1f} min | {r['fixed_s'] / 60:.1f} min | **{r['total_s'] / 60:.1f} min** |")
    if args.json:
        Path(args.json).write_text(json.dumps({"tflops": args.tflops, "flops_per_token": {**flops, "forward": fwd},
                                               "notebooks": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
