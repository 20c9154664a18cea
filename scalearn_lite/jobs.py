"""One job runner for the main jobs (demo, reproduce, lr-grid): a list of transfer runs, each resumable (a finished
run folder is reused), in this process or in several worker processes; one row per run.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

import pandas as pd
from tqdm.auto import tqdm

from .files import is_finished
from .transfer import run_folder, transfer


@dataclass
class Job:
    target: str
    sources: List[str]
    method: str
    seed: int
    include_target: bool = True
    k_shot: Optional[int] = None


def _job_folder(job: Job, preset, root: Path) -> Path:
    return run_folder(job.target, job.sources, job.method, preset, seed=job.seed, k_shot=job.k_shot,
                      include_target=job.include_target, root=root)


def _run_job(job: Job, preset, data_dir, root: Path, progress: bool) -> dict:
    """One run (or its finished folder) → its row: method, target, seed, metric, value, transfer_params, path."""
    folder = _job_folder(job, preset, root)
    reused = is_finished(folder)  # transfer() reuses it instead of training
    res = transfer(job.target, job.sources, job.method, preset, seed=job.seed, k_shot=job.k_shot, data_dir=data_dir,
                   out=folder, include_target=job.include_target, progress=progress)
    m = res.metrics
    val = m.get("validation_metric")
    return {"method": job.method, "target": job.target, "seed": job.seed, "k_shot": job.k_shot, "metric": m["metric"],
            "value": 100.0 * m["test_metric"], "validation": None if val is None else 100.0 * val,
            "steps": m["steps"], "transfer_params": m["transfer_params"],
            "omega_travel_bound": m.get("omega_travel_bound"),
            "seconds": m["wall_seconds"], "reused": reused, "path": str(res.path)}


# rough seconds per run relative to head_only (docs/results/demo-cpu-preset/runs.csv; finetune, not in the demo,
# taken as AdapterFusion): the order runs are handed out in
_RELATIVE_COST = {"adapterfusion": 2.3, "finetune": 2.3, "scalearn": 1.5, "scalearn_uniform": 1.5, "scalearn_pp": 1.5,
                  "scalearn_uniform_pp": 1.5, "fixed_omega": 1.0, "average": 1.0, "head_only": 1.0, "adaptersoup": 1.0,
                  "adapter": 0.1}


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def run_jobs(jobs: Sequence[Job], preset, *, data_dir=None, root: Path, progress: bool = True,
             workers: int = 1) -> pd.DataFrame:
    """Run (or reuse) every job, its run folder under `root` (transfer's layout); one row per run, in job order.

    `workers` > 1: finished run folders are read here; then stage 1 (every adapter the unfinished runs load, each
    trained once: the zoo here, the targets' own adapters first in the processes' queue), then those runs, the
    longest first, in that many processes with cores // workers torch threads each. No process waits for all own
    adapters: a run whose own adapter is still being trained waits for that folder alone (train_source's lock).
    """
    bar = tqdm(total=len(jobs), desc="runs", disable=not progress, unit="run")
    if workers <= 1:
        rows = []
        for job in jobs:
            bar.set_postfix_str(f"{job.method} → {job.target} seed {job.seed}")
            rows.append(_run_job(job, preset, data_dir, root, progress))
            bar.update(1)
        bar.close()
        return pd.DataFrame(rows)
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from .processes import stop_on_interrupt
    from .transfer import stage1_plan, train_stage1

    rows = [None] * len(jobs)
    todo = []
    for i, job in enumerate(jobs):
        if is_finished(_job_folder(job, preset, root)):  # reused as is: no stage 1, no process
            rows[i] = _run_job(job, preset, data_dir, root, False)
            bar.update(1)
        else:
            todo.append(i)
    if not todo:
        bar.close()
        return pd.DataFrame(rows)
    bar.set_postfix_str("stage 1")
    plan = list(dict.fromkeys(a for i in todo for a in stage1_plan(
        jobs[i].target, jobs[i].sources, jobs[i].method, preset, seed=jobs[i].seed, k_shot=jobs[i].k_shot,
        data_dir=data_dir, include_target=jobs[i].include_target)))  # every source checked before anything trains
    # the zoo here (shared by many runs); the targets' own adapters (one per target and seed) in the processes
    train_stage1([a for a in plan if a.role == "source"], preset, data_dir=data_dir, progress=progress)
    threads = max(1, (os.cpu_count() or 1) // workers)
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
                             initargs=(threads,)) as pool, stop_on_interrupt(pool):  # Ctrl-C: exit 130 promptly
        # first in the queue, in job order (seed 0's, which the transfers load, before the Adapter row's other seeds)
        own = [pool.submit(train_stage1, [a], preset, data_dir=data_dir, progress=False)
               for a in plan if a.role != "source"]
        longest_first = sorted(todo, key=lambda i: -_RELATIVE_COST.get(jobs[i].method, 2))  # a short tail
        futures = {pool.submit(_run_job, jobs[i], preset, data_dir, root, False): i for i in longest_first}
        for future in as_completed(futures):
            rows[futures[future]] = future.result()
            job = jobs[futures[future]]
            bar.set_postfix_str(f"done {job.method} → {job.target} seed {job.seed}")
            bar.update(1)
        for future in own:  # done by now (the runs needed them); an error here would have stopped a run too
            future.result()
    bar.close()
    return pd.DataFrame(rows)
