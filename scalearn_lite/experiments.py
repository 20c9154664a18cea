"""The main job: `demo` (the paper's comparison in miniature) and `reproduce` (a whole benchmark).

Both are loops over `transfer()` runs (each resumable: a finished run folder is reused), then a
results table in the paper's layout (rows = methods, columns = targets + average, mean ± std).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from . import data as data_mod
from .hub import HUB_CAVEAT, SOURCE_SPECS, hub_adapter_id, is_hub_id
from .files import is_finished, write_text
from .provenance import git_revision, machine
from .tasks import get_task, list_tasks
from .device import precision_used
from .methods import METHOD_NAMES, METHODS, OMEGA_METHODS
from .sources import is_task_ref, task_name_of
from .transfer import run_folder, transfer

# The demo's sources: zoo adapters with signal for small pair tasks (QNLI is dev-only offline: a source only).
# RTE left them (it was one until the ω-learning budget): its zoo adapter is at chance on validation (52.5 against
# the constant's 51.5, docs/results/demo-cpu/zoo.md of that run) and the slowest of the demo's sources to train.
DEMO_SOURCES = ("sst2", "stsb", "qnli", "mrpc")
# Candidate targets (small, with signal for this model); the two defaults were picked among them on
# *validation* scores (docs/results/target-selection/results.md), never on test.
DEMO_TARGET_CANDIDATES = ("mrpc", "stsb", "rte", "cb")
DEMO_TARGETS = ("stsb", "mrpc")  # largest validation gain of a ScaLearn variant over Adapter among the candidates
DEMO_METHODS = OMEGA_METHODS + ("adapter", "adapterfusion", "fixed_omega", "average", "head_only")
PAPER_AVERAGES = {"glue": {"finetune": 83.93, "adapter": 83.83, "adapterfusion": 85.01, "scalearn": 85.36,
                           "scalearn_uniform": 85.02, "scalearn_pp": 85.35, "scalearn_uniform_pp": 85.14},
                  "superglue": {"finetune": 71.74, "adapter": 73.19, "adapterfusion": 73.60, "scalearn": 75.55,
                                "scalearn_uniform": 74.20, "scalearn_pp": 75.74, "scalearn_uniform_pp": 74.93}}


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


def summarize(runs: pd.DataFrame, column: str = "value") -> pd.DataFrame:
    """Per method and target: metric, mean, std (over seeds, ddof=1; 0 for one seed), seeds, transfer_params.

    `column`: "value" (the test score) or "validation" (the selection split: what choices are made on)."""
    stats = seed_stats(runs, ["method", "target"], column)
    rest = runs.groupby(["method", "target"], sort=False).agg(metric=("metric", "first"),
                                                              transfer_params=("transfer_params", "max"))
    return stats.join(rest)[["metric", "mean", "std", "seeds", "transfer_params"]].reset_index()


def seed_stats(runs: pd.DataFrame, by: Sequence[str], column: str) -> pd.DataFrame:
    """Per group of `by`: mean and std over seeds (ddof=1; 0 for a single seed) of `column`, and the number of
    seeds. The one place a table's "mean ± std over seeds" is computed (demo, reproduce and the notebooks)."""
    g = runs.groupby(list(by), sort=False)
    out = pd.DataFrame({"mean": g[column].mean(), "std": g[column].std(ddof=1), "seeds": g["seed"].nunique()})
    out["std"] = out["std"].fillna(0.0)  # one seed: no spread
    return out


def paper_table(summary: pd.DataFrame, targets: Sequence[str], methods: Sequence[str],
                constant: Optional[Dict[str, Optional[float]]] = None) -> str:
    """Markdown table: rows = methods, columns = targets (metric) + Avg + transfer params.

    `constant` (target → score or None, see constant_scores) adds a last row: the best constant prediction.
    """
    metric = {t: summary.loc[summary.target == t, "metric"].iloc[0] for t in targets if (summary.target == t).any()}
    head = "| method | " + " | ".join(f"{t} ({metric.get(t, '')})" for t in targets) + " | Avg | transfer params |"
    lines = [head, "|" + "---|" * (len(targets) + 3)]
    for m in methods:
        sub = summary[summary.method == m].set_index("target")
        if sub.empty:
            continue
        cells = [f"{sub.at[t, 'mean']:.2f} ± {sub.at[t, 'std']:.2f}" if t in sub.index else "–" for t in targets]
        avg = np.mean([sub.at[t, "mean"] for t in targets if t in sub.index])
        params = int(sub["transfer_params"].max())
        lines.append(f"| {METHOD_NAMES[m]} | " + " | ".join(cells) + f" | {avg:.2f} | {params:,} |")
    if constant:
        values = [constant.get(t) for t in targets]
        cells = ["–" if v is None else f"{v:.2f}" for v in values]
        avg = "–" if None in values else f"{np.mean(values):.2f}"
        lines.append("| *best constant prediction* | " + " | ".join(cells) + f" | {avg} | – |")
    return "\n".join(lines)


def constant_scores(targets: Sequence[str], preset, data_dir=None, split: str = "test") -> Dict[str, Optional[float]]:
    """Per target, in %: the best constant prediction's score on the rows the runs are scored on (`split`: test
    or validation; metrics.best_constant: majority class, "always yes" for MultiRC's F1a; None for regression)."""
    from .metrics import best_constant
    from .sources import load_task_data

    out = {}
    for t in targets:
        task = get_task(t)
        score = best_constant(task, [r["label"] for r in load_task_data(task, preset, data_dir)[split]])
        out[task.name] = None if score is None else 100.0 * score
    return out


def paper_comparison(summary: pd.DataFrame, targets: Sequence[str], methods: Sequence[str], benchmark: str) -> str:
    """Markdown: our average over `targets` next to the paper's benchmark average (roberta-base, all tasks)."""
    paper = PAPER_AVERAGES[benchmark]
    lines = [f"Our average over {', '.join(targets)} next to the paper's {benchmark} average (roberta-base, every "
             f"task of the benchmark, as the paper reports it); compare the order of the methods, not the absolute "
             "numbers.", "",
             "| method | ours (avg) | paper (avg) |", "|---|---|---|"]
    for m in methods:
        sub = summary[(summary.method == m) & summary.target.isin(targets)]
        ours = f"{sub['mean'].mean():.2f}" if not sub.empty else "–"
        lines.append(f"| {METHOD_NAMES[m]} | {ours} | {paper[m]:.2f} |" if m in paper else f"| {METHOD_NAMES[m]} | {ours} | – |")
    return "\n".join(lines)


def omega_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Every ScaLearn-variant run's ω, one row per layer × source (viz.omega_stats): target, method, seed, layer,
    source, mean, min, max (over hidden units) and mean_abs_change (mean |ω − 2/S|)."""
    from .viz import omega_stats

    frames = [omega_stats(r.path).assign(target=r.target, method=r.method, seed=r.seed)
              for r in runs.itertuples() if r.method in OMEGA_METHODS]
    cols = ["target", "method", "seed", "layer", "source", "mean", "min", "max", "mean_abs_change"]
    return pd.concat(frames, ignore_index=True)[cols] if frames else pd.DataFrame(columns=cols)


def omega_travel(omega: pd.DataFrame) -> pd.DataFrame:
    """Per target × method × seed: the largest mean |ω − 2/S| over layer × source (how far ω moved in that run)."""
    return omega.groupby(["target", "method", "seed"], sort=False)["mean_abs_change"].max().rename(
        "max_mean_abs_change").reset_index()


def travel_table(omega: pd.DataFrame, bounds: Dict[str, float]) -> str:
    """Markdown: per method × target, how far ω moved in each seed (the largest mean |ω − 2/S| over layer ×
    source) next to the bound lr·Σ(schedule) (`bounds`: method → metrics.json's omega_travel_bound)."""
    travel = omega_travel(omega)
    if travel.empty:
        return ""
    seeds = sorted(travel.seed.unique())
    lines = ["| method | target | " + " | ".join(f"seed {s}" for s in seeds) + " | bound lr·Σ(schedule) |",
             "|---|---|" + "---|" * (len(seeds) + 1)]
    for (method, target), g in travel.groupby(["method", "target"], sort=False):
        cells = [f"{v:.3f}" for v in g.set_index("seed").reindex(seeds)["max_mean_abs_change"]]
        bound = bounds.get(method)
        lines.append(f"| {METHOD_NAMES[method]} | {target} | " + " | ".join(cells)
                     + f" | {'–' if bound is None else f'{bound:.3f}'} |")
    return "\n".join(lines)


def write_results(out: Path, runs: pd.DataFrame, summary: pd.DataFrame, table: str, header: str,
                  omega: Optional[pd.DataFrame] = None) -> None:
    """results.csv (one row per method × target), runs.csv (one per run), omega.csv (ω of every ScaLearn-variant
    run per layer × source) and results.md."""
    out.mkdir(parents=True, exist_ok=True)
    cols = ["method", "target", "metric", "mean", "std", "seeds", "transfer_params"]
    write_text(out / "results.csv", summary[cols].to_csv(index=False, float_format="%.4f"))
    write_text(out / "runs.csv", runs.to_csv(index=False, float_format="%.4f"))
    omega = omega_table(runs) if omega is None else omega
    write_text(out / "omega.csv", omega.to_csv(index=False, float_format="%.5f"))
    write_text(out / "results.md", f"{header}\n\n{table}\n")


def _plots(out: Path, runs: pd.DataFrame, targets: Sequence[str], data_dir=None) -> List[Path]:
    """Per target (seed 0, each ScaLearn variant): ω heatmaps centred at 2/S, what each source adds
    (contributions on validation), ω over training; and the parameter-efficiency plot; as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from . import viz

    paths = []
    for target in targets:
        first = runs[(runs.target == target) & (runs.seed == runs.seed.min()) & runs.method.isin(OMEGA_METHODS)]
        if first.empty:
            continue
        folders = {r.method: r.path for r in first.itertuples()}
        p = out / f"omega_heatmaps_{target}.png"  # centred at the initial 2/S: white = unchanged
        viz.variant_heatmaps(folders, save=p)
        paths.append(p)
        p = out / f"contributions_{target}.png"
        viz.variant_contributions({m: viz.run_contributions(f, data_dir=data_dir) for m, f in folders.items()}, save=p)
        paths.append(p)
        p = out / f"omega_movement_{target}.png"  # signed mean change and mean |ω − 2/S| per layer × source
        viz.movement_heatmaps(folders, save=p)
        paths.append(p)
        for what, name in (("mean", "omega_training"), ("abs", "omega_movement_training")):
            p = out / f"{name}_{target}.png"
            viz.variant_training(folders, save=p, what=what)
            paths.append(p)
        plt.close("all")
    # one point per method: the average over targets, its spread over seeds
    per_seed = runs.groupby(["method", "seed"], sort=False).agg(value=("value", "mean"),
                                                                transfer_params=("transfer_params", "max"))
    points = per_seed.reset_index().assign(test_metric=lambda d: d.value / 100,
                                           name=lambda d: d.method.map(METHOD_NAMES))
    p = out / "efficiency.png"
    viz.efficiency_plot(points, metric="score averaged over targets", save=p)
    paths.append(p)
    return paths


# ------------------------------------------------------------------------------------------ demo
def budget_line(preset) -> str:
    """The preset's three budgets in one line, for table headers."""
    return (f"sources: {preset.source_max_train or 'all'} rows × {preset.source_epochs} epochs (patience "
            f"{preset.source_patience}); target: {preset.max_train or 'all'} rows, own adapter {preset.target_epochs} "
            f"epochs (patience {preset.target_patience}), transfer {preset.transfer_epochs} epochs (head lr "
            f"{preset.transfer_lr:g}, ω lr {preset.omega_rate():g}), checkpoint by validation "
            f"{preset.transfer_select_by}; {preset.max_validation or 'all'} validation rows")


def demo(preset, *, targets: Sequence[str] = DEMO_TARGETS, sources: Sequence[str] = DEMO_SOURCES,
         methods: Sequence[str] = DEMO_METHODS, seeds: int = 3, out="runs/demo", report: str = "test",
         data_dir=None, progress: bool = True, workers: int = 1) -> pd.DataFrame:
    """The paper's comparison in miniature: the source zoo (trained once, then cached), `methods` × `targets` ×
    `seeds` transfer runs, the table (scored on `report`: "test" or "validation", the split choices are made on),
    results.md/.csv and the plots in `out`. Returns the per-method summary."""
    from . import zoo as zoo_mod

    start = time.perf_counter()
    out, targets, sources, methods = Path(out), list(targets), list(sources), list(methods)
    if report not in ("test", "validation"):
        raise ValueError(f"report must be 'test' or 'validation', got {report!r}")
    if seeds < 1:
        raise ValueError(f"seeds must be >= 1 (runs seeds 0..seeds-1), got {seeds}")
    for m in methods:
        if m not in METHODS:
            raise ValueError(f"unknown method {m!r}; choose from {', '.join(METHODS)}")
    targets = [get_task(t).name for t in targets]
    zoo_tasks = [n for n in sources if is_task_ref(n) and task_name_of(n) not in targets]
    print(f"demo: the source zoo ({', '.join(zoo_tasks)}; trained once with the source budget, then cached)")
    zoo = zoo_mod.train_zoo(preset, zoo_tasks, data_dir=data_dir, progress=progress) if zoo_tasks else None
    zoo_minutes = (time.perf_counter() - start) / 60
    if zoo is not None:
        print(zoo_mod.zoo_table(zoo) + f"\nzoo: {zoo_minutes:.1f} min\n")
    jobs = [Job(t, sources, m, s) for s in range(seeds) for t in targets for m in methods]
    print(f"demo: {len(jobs)} runs ({len(methods)} methods × {len(targets)} targets × {seeds} seeds), preset "
          f"{preset.name}: {budget_line(preset)}")
    runs = run_jobs(jobs, preset, data_dir=data_dir, root=out / "runs", progress=progress, workers=workers)
    column = "validation" if report == "validation" else "value"
    summary = summarize(runs, column)
    table = paper_table(summary, targets, methods, constant_scores(targets, preset, data_dir, report))
    omega = omega_table(runs)
    bounds = runs.dropna(subset=["omega_travel_bound"]).groupby("method")["omega_travel_bound"].max().to_dict()
    travel = travel_table(omega, bounds)
    if travel:
        table += ("\n\nHow far ω moved: per run, the largest mean |ω − 2/S| over layer × source (omega.csv), next to "
                  "the most Adam could move it, lr·Σ(schedule):\n\n" + travel)
    minutes = (time.perf_counter() - start) / 60
    split = ("VALIDATION split (the 10% held out of train: what choices are made on)" if report == "validation"
             else "test = official dev split")
    command = f"scalearn-lite demo --preset {preset.name} --targets {','.join(targets)} --sources {','.join(sources)}"
    if methods != list(DEMO_METHODS):
        command += f" --methods {','.join(methods)}"
    if seeds != 3:
        command += f" --seeds {seeds}"
    if report == "validation":
        command += " --report validation"
    header = (f"# scalearn_lite demo\n\n`{command}` · sources {source_notes(sources, data_dir)} (target's own "
              f"adapter last) · {seeds} seeds · {split}, scores in % · {budget_line(preset)} · machine: "
              f"{machine()}, {precision_used(preset.cpu_precision)} · git {git_revision()} · wall time {minutes:.1f} "
              f"min: zoo {zoo_minutes:.1f} ({0 if zoo is None else int((~zoo['cached']).sum())} adapters trained), "
              f"runs {minutes - zoo_minutes:.1f} ({run_counts(runs)})")
    write_results(out, runs, summary, table, header, omega)
    if zoo is not None:
        zoo_mod.write_zoo(out, zoo, f"# the demo's source zoo\n\n{budget_line(preset)}")
    plots = _plots(out, runs, targets, data_dir)
    print("\n" + table + "\n")
    print(f"wrote {out / 'results.md'}, {out / 'results.csv'}, " + ", ".join(str(p) for p in plots))
    print(f"total wall time {minutes:.1f} min (zoo {zoo_minutes:.1f}, runs {minutes - zoo_minutes:.1f})")
    return summary


# ------------------------------------------------------------------------------------- reproduce
def benchmark_tasks(benchmark: str, data_dir=None) -> Dict[str, List[str]]:
    """{"targets": tasks with training data here, "sources": tasks with any data here} for a benchmark."""
    targets, sources = [], []
    for name in list_tasks(benchmark):
        try:
            data_mod.load_raw(name, data_dir)
        except (FileNotFoundError, ValueError, OSError):
            continue
        sources.append(name)
        if data_mod.has_train(name, data_dir):
            targets.append(name)
    return {"targets": targets, "sources": sources}


def run_counts(runs: pd.DataFrame) -> str:
    """ "N new runs, M finished runs reused" for a header."""
    reused = int(runs["reused"].sum()) if "reused" in runs else 0
    return f"{len(runs) - reused} new runs, {reused} finished runs reused"


def source_notes(sources: Sequence[str], data_dir=None) -> str:
    """The sources, each dev-only one marked (every table must say which sources never had a test split)."""
    notes = []
    for name in sources:
        if is_task_ref(name) and not data_mod.has_train(name, data_dir):
            notes.append(f"{name} (dev only here: its adapter trains on 90% of the dev file; never a target)")
        elif is_hub_id(name):
            notes.append(f"{name} ({HUB_CAVEAT})")
        else:
            notes.append(name)
    return ", ".join(notes)


def _reproduce_command(benchmark: str, preset_name: str, seeds: int, targets, sources, methods, data_dir) -> str:
    parts = ["scalearn-lite reproduce", f"--benchmark {benchmark}", f"--preset {preset_name}", f"--seeds {seeds}"]
    if targets:
        parts.append(f"--targets {','.join(targets)}")
    if sources:
        parts.append(f"--sources {sources if isinstance(sources, str) else ','.join(sources)}")
    if list(methods) != list(METHODS):
        parts.append(f"--methods {','.join(methods)}")
    if data_dir:
        parts.append(f"--data-dir {data_dir}")
    return " ".join(parts)


def in_benchmark(names: Sequence[str], benchmark: str, *, strict: bool) -> List[str]:
    """Task names read within a benchmark: "rte" under superglue is superglue_rte.

    `strict` (targets): a task of another benchmark, or a name that is no task, is refused; otherwise (sources)
    both are kept as named (adapter folders and hub ids included).
    """
    out = []
    for name in names:
        canonical = task_name_of(f"{benchmark}/{name}") or task_name_of(name)
        if canonical is None:
            if strict:
                get_task(name)  # raises "unknown task ..., valid names: ..."
            out.append(name)
            continue
        task = get_task(canonical)
        if strict and task.benchmark != benchmark:
            raise ValueError(f"target {name!r} is a {task.benchmark} task, not a {benchmark} one; "
                             f"{benchmark} targets: {', '.join(list_tasks(benchmark))}")
        out.append(task.name)
    return out


def reproduce(benchmark: str, preset, *, seeds: int = 3, targets: Optional[Sequence[str]] = None,
              sources=None, methods: Sequence[str] = METHODS, data_dir=None, out=None, progress: bool = True,
              workers: int = 1) -> pd.DataFrame:
    """Every target of `benchmark` with training data (or `targets`) against every source with data (or
    `sources`: names, or a hub set name such as "hub" / "hub-pf"), all `methods`, `seeds` seeds; finished run
    folders in `out` are reused. Writes results.md/.csv, the paper comparison and the plots; returns the summary."""
    start = time.perf_counter()
    methods = list(methods)
    out = Path(out or f"runs/reproduce/{benchmark}-{preset.name}")
    avail = benchmark_tasks(benchmark, data_dir)
    targets_given = list(targets) if targets else []
    targets = in_benchmark(targets_given, benchmark, strict=True) if targets_given else avail["targets"]
    if not targets:
        raise FileNotFoundError(f"no {benchmark} task has training data here; pass --data-dir or go online")
    hub_set = SOURCE_SPECS.get(sources) if isinstance(sources, str) else None
    hub = hub_set is not None
    if isinstance(sources, str) and not hub:  # "rte,mrpc": names, as on the command line
        sources = [v.strip() for v in sources.split(",") if v.strip()]
    source_names = in_benchmark(list(sources), benchmark, strict=False) if sources and not hub else avail["sources"]
    jobs = []
    for t in targets:
        srcs = ([hub_adapter_id(n, hub_set) for n in source_names if n != t] + [hub_adapter_id(t, hub_set)] if hub
                else source_names)
        jobs += [Job(t, srcs, m, s, not hub) for s in range(seeds) for m in methods]
    print(f"reproduce {benchmark}: {len(targets)} targets × {len(methods)} methods × {seeds} seeds = "
          f"{len(jobs)} runs; finished run folders in {out} are reused")
    runs = run_jobs(jobs, preset, data_dir=data_dir, root=out / "runs", progress=progress, workers=workers)
    summary = summarize(runs)
    table = paper_table(summary, targets, methods, constant_scores(targets, preset, data_dir))
    described = (f"AdapterHub's roberta-base {hub_set!r} set ({HUB_CAVEAT})" if hub
                 else source_notes(source_names, data_dir))
    command = _reproduce_command(benchmark, preset.name, seeds, targets if targets_given else None, sources, methods,
                                 data_dir)
    header = (f"# reproduce {benchmark} ({preset.name} preset)\n\n`{command}` · "
              f"sources: {described} (each target's own adapter included) · test = official dev split, scores in % · "
              f"machine: {machine()}, {precision_used(preset.cpu_precision)} · git {git_revision()} · "
              f"wall time {(time.perf_counter() - start) / 60:.1f} min ({run_counts(runs)})")
    compare = paper_comparison(summary, targets, methods, benchmark)
    write_results(out, runs, summary, table + "\n\n" + compare, header)
    plots = _plots(out, runs, targets, data_dir)
    print("\n" + table + "\n\n" + compare)
    print(f"\nwrote {out / 'results.md'}, {out / 'results.csv'}, " + ", ".join(str(p) for p in plots))
    return summary
