"""`scalearn-lite` command line: the same steps as the notebooks.

Every command explains itself with --help, shows progress on long work, and exits non-zero with a
one-line reason on failure.
"""
from __future__ import annotations

import argparse
from pathlib import Path
import json
import os
import sys
from typing import List, Optional


def at_least(low: int):
    """An argparse type: an integer >= low, else argparse's one-line error naming the option."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {value}")
        return value

    parse.__name__ = f"integer >= {low}"
    return parse


def _common(p: argparse.ArgumentParser, preset_default: str = "cpu") -> None:
    p.add_argument("--preset", default=preset_default, help="tiny (tests), cpu (laptop), demo (cpu with 3 "
                   f"target epochs: make demo), paper (GPU, roberta-base); default {preset_default}")
    p.add_argument("--model", default=None, help="base model: hub name, local folder or 'embedded' (overrides the preset)")
    p.add_argument("--data-dir", default=None, help="folder with glue_data/ and superglue/ (else $SCALEARN_DATA_DIR, "
                   "else the Hugging Face hub)")
    p.add_argument("--seed", type=at_least(0), default=0, help="random seed (default 0)")
    p.add_argument("--k-shot", type=at_least(1), default=None, help="few-shot: keep k target training examples (4, 16, 32, 100)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_cpu_precision(p)
    add_trust(p)


def add_trust(p: argparse.ArgumentParser) -> None:
    p.add_argument("--allow-untrusted-hub", action="store_true", help="allow a --model or source hub id outside the "
                   "ones scalearn_lite names (its config.json is still checked: CVE-2026-4372); also "
                   "SCALEARN_ALLOW_UNTRUSTED_HUB=1")


def add_cpu_precision(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cpu-precision", default=None, choices=["fp32", "bf16", "auto"],
                   help="on CPU: fp32, bf16 autocast, or auto = bf16 where the CPU has native bf16 (AMX or AVX-512 BF16) (default: the preset's, "
                   "auto for cpu, demo and paper, fp32 for tiny); a GPU always trains in mixed precision")


def preset_of(args):
    """The preset named by --preset, with --cpu-precision applied."""
    from .config import get_preset

    return get_preset(args.preset).with_(cpu_precision=getattr(args, "cpu_precision", None))


def cmd_tasks(args) -> int:
    from .data import task_table

    rows = task_table(args.data_dir)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    head = f"{'task':<15}{'benchmark':<11}{'metric':<16}{'labels':>7}{'train':>9}{'valid':>8}{'test':>8}  source"
    print(head)
    print("-" * len(head))
    for r in rows:
        s = r["splits"]
        print(f"{r['name']:<15}{r['benchmark']:<11}{r['metric']:<16}{r['num_labels'] if r['num_labels'] is not None else '?':>7}{s['train']:>9}"
              f"{s['validation']:>8}{s['test']:>8}  {r['source']}")
    return 0


def cmd_train_source(args) -> int:
    from .sources import train_source

    res = train_source(args.task, preset_of(args), model=args.model, data_dir=args.data_dir, seed=args.seed,
                       k_shot=args.k_shot, out=args.out, force=args.force, progress=not args.quiet,
                       role="target" if args.k_shot else args.role)
    m = res.metrics
    if not _main_process():
        return 0
    test = (f"test {m['metric']} = {100 * m['test'][m['metric']]:.2f}" if m["test"] else
            "no test split (a dev-only task: its dev file was split 90/10, usable as a source only)")
    print(f"{'cached ' if res.cached else ''}adapter for {m['task']} on {m['base']}: {test}  (validation "
          f"{100 * m['validation'][m['metric']]:.2f}, {m['steps']} steps, {m['seconds']:.0f} s)\n  → {res.path}")
    return 0


def cmd_transfer(args) -> int:
    from .methods import METHOD_NAMES
    from .transfer import transfer

    res = transfer(args.target, args.sources.split(",") if args.sources else [], args.method, preset_of(args),
                   seed=args.seed, k_shot=args.k_shot, data_dir=args.data_dir, out=args.out,
                   include_target=not args.exclude_target, model=args.model, progress=not args.quiet,
                   force=args.force, report_to=args.report_to, logging_dir=args.logging_dir)
    m = res.metrics
    rows = m.get("rows", {})
    if not _main_process():  # under accelerate launch / torchrun: one line, from the process that wrote the folder
        return 0
    took = (f"reused: finished earlier in {m['wall_seconds']:.0f} s, nothing trained now (--force to rerun)"
            if res.reused else f"{m['wall_seconds']:.0f} s")
    print(f"{METHOD_NAMES[m['method']]} → {m['target']} (sources {', '.join(m['sources']) or '-'}): "
          f"test {m['metric']} = {100 * m['test_metric']:.2f}, validation {100 * (m['validation_metric'] or 0):.2f}, "
          f"transfer params {m['transfer_params']:,}, {m['steps']} steps (budget {m.get('step_budget', '?')}) on "
          f"{rows.get('train', '?')} train / {rows.get('validation', '?')} validation rows, "
          f"{took}\n  → {res.path}")
    return 0


def cmd_zoo(args) -> int:
    import time

    from . import zoo
    from .provenance import git_revision, machine
    from .device import precision_used

    start, preset = time.perf_counter(), preset_of(args)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else zoo.ZOO_TASKS
    table = zoo.train_zoo(preset, tasks, data_dir=args.data_dir, progress=not args.quiet)
    minutes = (time.perf_counter() - start) / 60
    print(zoo.zoo_table(table))
    trained = int((~table["cached"]).sum())
    print(f"{trained} adapters trained, {len(table) - trained} reused from the cache, {minutes:.1f} min")
    if args.out:
        command = f"scalearn-lite zoo --preset {preset.name}" + (f" --tasks {args.tasks}" if args.tasks else "")
        header = (f"# source zoo ({preset.name} preset)\n\n`{command}` · {preset.source_max_train or 'all'} rows × "
                  f"{preset.source_epochs} epochs per source (early stopping patience {preset.source_patience} on "
                  f"validation loss), lr {preset.source_lr:g}, batch {preset.batch_size}, seed 0 · scores in % · "
                  f"machine: {machine()}, {precision_used(preset.cpu_precision)} · git {git_revision()} · wall time "
                  f"{minutes:.1f} min ({trained} trained, {len(table) - trained} reused; 'train s' is each adapter's own "
                  f"training time)")
        zoo.write_zoo(Path(args.out), table, header)
        print(f"wrote {Path(args.out) / 'zoo.md'}")
    return 0


def cmd_params(args) -> int:
    from .models import load_config
    from .params import count_parameters, report, synthetic_config

    if args.model:
        config = load_config(args.model)
    elif args.hidden_size and args.num_layers:
        config = synthetic_config(args.hidden_size, args.num_layers)
    else:
        raise ValueError("give --model M, or both --hidden-size H and --num-layers L")
    counts = count_parameters(config, args.sources)
    if args.json:
        print(json.dumps({k: v for k, v in counts.items()}, indent=2))
        return 0
    print(f"transfer parameters, H={config.hidden_size}, L={config.num_hidden_layers}, S={args.sources} "
          f"(head excluded; base model {counts['base']:,})")
    print(f"{'method':<22}{'params':>14}{'% of fusion':>14}{'% of base':>12}")
    for r in report(counts):
        print(f"{r['method']:<22}{r['transfer_params']:>14,}{r['pct_of_fusion']:>13.4g}%{r['pct_of_base']:>11.4g}%")
    return 0


def _csv(value: Optional[str]) -> List[str]:
    """ "a, b,,c" → ["a", "b", "c"]: the comma-separated lists of the options."""
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _workers(p: argparse.ArgumentParser) -> None:
    default = min(2, os.cpu_count() or 1)
    p.add_argument("--jobs", type=at_least(1), default=default, help="transfer runs in parallel processes, each with "
                   f"cores / jobs torch threads, after stage 1 (default {default}: min(2, cores); on 2 cores two "
                   "1-thread runs finished 1.2x sooner than one 2-thread run at a time)")


def _demo_arguments(p: argparse.ArgumentParser) -> None:
    from .experiments import DEMO_METHODS, DEMO_SOURCES, DEMO_TARGETS

    p.add_argument("--preset", default="demo", help="demo (default: the cpu preset with 3 instead of 6 epochs for "
                   "the own adapter and stage 2 and its own rates; 12 minutes on 2 cores with the zoo cached), cpu, "
                   "tiny or paper")
    p.add_argument("--data-dir", default=None, help="folder with glue_data/ (else $SCALEARN_DATA_DIR, else the hub)")
    p.add_argument("--targets", default=",".join(DEMO_TARGETS),
                   help=f"comma-separated targets (default {','.join(DEMO_TARGETS)})")
    p.add_argument("--sources", default=",".join(DEMO_SOURCES),
                   help=f"comma-separated sources (default {','.join(DEMO_SOURCES)})")
    p.add_argument("--methods", default=",".join(DEMO_METHODS), help="comma-separated methods (default: the four "
                   "ScaLearn variants, adapter, adapterfusion, average, head_only)")
    p.add_argument("--seeds", type=at_least(1), default=3, help="seeds per setting (default 3)")
    p.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    p.add_argument("--report", default="test", choices=["test", "validation"], help="score the table on test "
                   "(default) or on validation, the split every choice (targets, budgets, rates) is made on")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_cpu_precision(p)
    add_trust(p)
    _workers(p)


def cmd_demo(args) -> int:
    from .experiments import demo

    demo(preset_of(args), targets=_csv(args.targets), sources=_csv(args.sources), methods=_csv(args.methods),
         seeds=args.seeds, out=args.out, report=args.report, data_dir=args.data_dir, progress=not args.quiet,
         workers=args.jobs)
    return 0


def _reproduce_arguments(p: argparse.ArgumentParser) -> None:
    from .methods import METHODS

    p.add_argument("--benchmark", required=True, choices=["glue", "superglue"], help="which benchmark")
    p.add_argument("--preset", default="cpu", help="cpu (embedded model) or paper (roberta-base, the paper's protocol)")
    p.add_argument("--seeds", type=at_least(1), default=3, help="seeds per setting (default 3)")
    p.add_argument("--targets", default=None, help="comma-separated targets (default: every task with training data)")
    p.add_argument("--sources", default=None, help="comma-separated sources (default: every task of the benchmark with "
                   "data, dev-only ones included), or 'hub' (= 'hub-pfeiffer') / 'hub-pf' for AdapterHub's roberta-base "
                   "Pfeiffer / pf adapters (selected by their authors on the official dev split, our test split: "
                   "optimistic scores)")
    p.add_argument("--methods", default=",".join(METHODS), help="comma-separated methods (default: all)")
    p.add_argument("--data-dir", default=None, help="folder with glue_data/ and superglue/ (else the hub)")
    p.add_argument("--out", default=None, help="output folder (default runs/reproduce/<benchmark>-<preset>)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_cpu_precision(p)
    add_trust(p)
    _workers(p)


def cmd_reproduce(args) -> int:
    from .experiments import reproduce
    from .hub import SOURCE_SPECS

    sources = args.sources if args.sources in SOURCE_SPECS else (_csv(args.sources) or None)
    reproduce(args.benchmark, preset_of(args), seeds=args.seeds, targets=_csv(args.targets) or None, sources=sources,
              methods=_csv(args.methods), data_dir=args.data_dir, out=args.out, progress=not args.quiet,
              workers=args.jobs)
    return 0


def _lr_grid_arguments(p: argparse.ArgumentParser) -> None:
    from .experiments import DEMO_SOURCES
    from .lr_grid import GROUPS

    p.add_argument("--preset", default="cpu", help="the preset whose budget is tuned (default cpu)")
    p.add_argument("--targets", default="stsb,rte", help="comma-separated targets (default stsb,rte)")
    p.add_argument("--sources", default=",".join(DEMO_SOURCES), help="sources of the transfer groups "
                   f"(default: the demo's, {','.join(DEMO_SOURCES)}; the target's own adapter goes last)")
    default = ",".join(g for g in GROUPS if g != "source")
    p.add_argument("--groups", default=default, help=f"which rates to tune, from {', '.join(GROUPS)} (default {default}: "
                   "'source' retrains every source adapter per factor)")
    p.add_argument("--factors", default="1,3,10", help="multiples of the paper's rate to try (default 1,3,10)")
    p.add_argument("--data-dir", default=None, help="folder with glue_data/ and superglue/ (else the hub)")
    p.add_argument("--out", default=None, help="run folders (default runs/lr_grid/<preset>); finished runs are reused")
    p.add_argument("--json", default=None, metavar="FILE", help="write the grid and the chosen rates here")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_cpu_precision(p)
    add_trust(p)


def cmd_lr_grid(args) -> int:
    import time

    from .files import write_json
    from .lr_grid import format_table, lr_grid
    from .provenance import git_revision, machine
    from .tasks import get_task

    start = time.perf_counter()
    preset = preset_of(args)
    targets = [get_task(t).name for t in _csv(args.targets)]
    try:
        factors = [float(f) for f in _csv(args.factors)]
    except ValueError:
        raise ValueError(f"--factors must be comma-separated numbers, got {args.factors!r}") from None
    out = Path(args.out or f"runs/lr_grid/{preset.name}")
    res = lr_grid(preset, targets, _csv(args.sources), _csv(args.groups), factors, data_dir=args.data_dir,
                  out=out, progress=not args.quiet)
    table = format_table(res["groups"])
    chosen = {g["field"]: g["chosen_lr"] for g in res["groups"].values()}
    print("\n" + table + "\n\nchosen: " + ", ".join(f"{k}={v:g}" for k, v in chosen.items()))
    if args.json:
        write_json(Path(args.json), {"preset": preset.name, "targets": targets, "sources": _csv(args.sources),
                                     "factors": factors, "seed": 0,
                                     "selection": "lowest mean over tasks of validation loss / the task's best in the grid",
                                     "groups": res["groups"], "chosen": chosen, "machine": machine(),
                                     "git": git_revision(), "wall_seconds": time.perf_counter() - start,
                                     "table": table})
        print(f"→ {args.json}")
    return 0


def _bench_arguments(p: argparse.ArgumentParser) -> None:
    from .bench import DEFAULT_SOURCES

    p.add_argument("--preset", default=None, help="model (and default batch / length) from a preset: tiny, cpu, "
                   "demo, paper; default cpu (all-MiniLM-L6-v2, 6 layers) on --device cpu, paper (roberta-base) on "
                   "cuda")
    p.add_argument("--model", default=None, help="base model: hub name, local folder or 'embedded' "
                   "(overrides the preset)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="cpu (fp32) or cuda (bf16 autocast)")
    p.add_argument("--json", default=None, metavar="FILE", help="write every figure, the machine and the ratios here")
    p.add_argument("--batch-size", type=at_least(1), default=None, help="examples per step (default: the preset's, 32)")
    p.add_argument("--seq-len", type=at_least(1), default=None, help="tokens per example (default: the preset's, 128)")
    p.add_argument("--repeats", type=at_least(1), default=3, help="timed rounds; each runs one step of every configuration "
                   "(default 3, medians reported)")
    p.add_argument("--warmup", type=at_least(1), default=1, help="untimed rounds first (at least 1: the first one measures "
                   "memory); default 1")
    p.add_argument("--sources", default=DEFAULT_SOURCES, help=f"numbers of sources S for the ScaLearn sweep "
                   f"(default {DEFAULT_SOURCES})")
    p.add_argument("--compare-sources", type=at_least(1), default=None, help="S for the loop, fusion, inference and "
                   "adapter-part comparisons (default 8 if in --sources, else the largest)")
    p.add_argument("--seed", type=at_least(0), default=0, help="seed for inputs, heads and source weights (default 0)")
    p.add_argument("--threads", type=at_least(1), default=None, help="torch CPU threads (default: torch's own choice)")
    p.add_argument("--random-weights", action="store_true", help="random weights at the model's shapes instead of "
                   "its trained ones (no download: roberta-base's shapes are built in); times and memory do not "
                   "depend on the weights' values")
    add_trust(p)


def cmd_bench(args) -> int:
    from . import bench

    setup = bench.make_setup(device=args.device, preset=args.preset, model=args.model, batch_size=args.batch_size,
                             seq_len=args.seq_len, repeats=args.repeats, warmup=args.warmup, sources=args.sources,
                             compare_sources=args.compare_sources, seed=args.seed,
                             random_weights=args.random_weights)
    bench.run(setup, threads=args.threads, json_path=args.json)
    return 0


class OneLineErrors(argparse.ArgumentParser):
    """argparse's parser whose usage errors are one line, naming the command and where its options are listed
    (argparse prints the whole usage block first); exit status 2 as argparse's. Its sub-commands inherit it."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (options: {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrors(prog="scalearn-lite", description="ScaLearn: learn to scale frozen source adapters for "
                           "task transfer. Stage 1 trains one adapter per source task; stage 2 learns scaling "
                           "coefficients ω over them for a target task.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("tasks", help="list every task with its metric, labels, data source and split sizes")
    p.add_argument("--data-dir", default=None, help="folder with glue_data/ and superglue/ (else $SCALEARN_DATA_DIR)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_tasks)

    p = sub.add_parser("train-source", help="stage 1: train (or reuse) one seq_bn adapter + head for a task")
    p.add_argument("task", help="task name, e.g. rte, sst2, cb (see `scalearn-lite tasks`)")
    _common(p)
    p.add_argument("--out", default=None, help="adapter folder (default data_cache/adapters/<model>/<task>/seed<k>/)")
    p.add_argument("--force", action="store_true", help="retrain even if a cached adapter exists")
    p.add_argument("--role", default="source", choices=["source", "target"], help="source (the zoo's budget, default) "
                   "or target (the target's own adapter on the target rows: the Adapter row); --k-shot implies target")
    p.set_defaults(func=cmd_train_source)

    p = sub.add_parser("zoo", help="train (or reuse) one source adapter per offline task and print their quality")
    p.add_argument("--preset", default="cpu", help="cpu (default), tiny or paper")
    p.add_argument("--data-dir", default=None, help="folder with glue_data/ and superglue/ (else $SCALEARN_DATA_DIR)")
    p.add_argument("--tasks", default=None, help="comma-separated tasks (default: every offline source task with data)")
    p.add_argument("--out", default=None, help="also write zoo.md and zoo.csv here (e.g. docs/results/zoo-cpu)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_cpu_precision(p)
    p.set_defaults(func=cmd_zoo)

    p = sub.add_parser("transfer", help="stage 2: transfer to a target with ScaLearn or a baseline; writes a run folder")
    p.add_argument("target", help="target task, e.g. rte")
    p.add_argument("--sources", default="", help="comma-separated source tasks, adapter folders or hub ids; the "
                   "target's own adapter is added last unless --exclude-target")
    p.add_argument("--method", default="scalearn", help="scalearn, scalearn_uniform, scalearn_pp, scalearn_uniform_pp, "
                   "adapter, adapterfusion, average, head_only, adaptersoup, finetune")
    _common(p)
    p.add_argument("--exclude-target", action="store_true", help="do not add the target's own adapter as a source")
    p.add_argument("--out", default=None, help="run folder (default runs/<model>/<target>/<method>/<sources>-<hash>"
                   "/seed<k>/, one per source set)")
    p.add_argument("--force", action="store_true", help="rerun even if the run folder is finished")
    p.add_argument("--report-to", default=None, help="comma-separated accelerate trackers that get losses, metrics and "
                   "ω per layer × source while stage 2 trains: tensorboard, wandb, mlflow, ... or all (installed "
                   "ones); history.csv is written either way")
    p.add_argument("--logging-dir", default=None, help="where local trackers write (default runs/tensorboard; "
                   "TensorBoard: <dir>/<model>/<target>/<method>/seed<k>)")
    p.set_defaults(func=cmd_transfer)

    p = sub.add_parser("params", help="transfer parameters per method, counted from instantiated modules")
    p.add_argument("--model", default=None, help="base model (hub name, folder or 'embedded')")
    p.add_argument("--hidden-size", type=at_least(1), default=None, help="hidden size H (instead of --model)")
    p.add_argument("--num-layers", type=at_least(1), default=None, help="number of layers L (instead of --model)")
    p.add_argument("--sources", type=at_least(1), default=8, help="number of source adapters S (default 8)")
    p.add_argument("--json", action="store_true", help="print {method: transfer parameters}")
    add_trust(p)
    p.set_defaults(func=cmd_params)

    p = sub.add_parser("bench", help="side-by-side speed and memory benchmark: floor, adapter, ScaLearn, loop, fusion")
    _bench_arguments(p)
    p.set_defaults(func=cmd_bench)
    p = sub.add_parser("demo", help="the paper's comparison in miniature: sources, all methods, 3 seeds, table + plots")
    _demo_arguments(p)
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("lr-grid", help="pick each method's learning rate from one grid (x paper rate) on validation loss")
    _lr_grid_arguments(p)
    p.set_defaults(func=cmd_lr_grid)
    p = sub.add_parser("reproduce", help="every target of a benchmark against all its sources, all methods; resumable")
    _reproduce_arguments(p)
    p.set_defaults(func=cmd_reproduce)
    return parser


def _main_process() -> bool:
    from .processes import is_main_process

    return is_main_process()


def _warn_single_process_launch() -> None:
    """`accelerate launch --cpu --num_processes N` (N > 1) starts ONE process in accelerate 1.x (several CPU
    processes need MPI there); it only sets MASTER_ADDR. Say so instead of silently training alone."""
    env = os.environ
    if env.get("ACCELERATE_USE_CPU", "").lower() == "true" and env.get("MASTER_ADDR") and "WORLD_SIZE" not in env \
            and not any(k in env for k in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK")):
        print("scalearn-lite: note: `accelerate launch --cpu` started one process; for N CPU processes use "
              "`accelerate launch --multi_gpu --num_processes N -m scalearn_lite ...` on a machine without GPUs "
              "(it then runs N CPU processes over gloo) or `torchrun --nproc_per_node N -m scalearn_lite ...`",
              file=sys.stderr)


def _tolerant_output() -> None:
    """A terminal that cannot print "→" or "ω" (PYTHONIOENCODING=latin-1, a C locale) gets escapes instead of an
    error after the work is done."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure") and (stream.encoding or "").lower().replace("-", "") != "utf8":
            stream.reconfigure(errors="backslashreplace")


def main(argv: Optional[List[str]] = None) -> int:
    _tolerant_output()
    args = build_parser().parse_args(argv)
    _warn_single_process_launch()
    from .models import untrusted_hub_allowed

    try:
        with untrusted_hub_allowed(getattr(args, "allow_untrusted_hub", False)):
            return args.func(args)
    except KeyboardInterrupt:
        print("scalearn-lite: interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, RuntimeError, OSError) as err:
        print(f"scalearn-lite: error: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # a library's own "disk full" (safetensors, torch) outside a folder write
        from .files import is_disk_full

        if not is_disk_full(err):
            raise
        print(f"scalearn-lite: error: no space left on the device ({str(err).splitlines()[0]}); free some space "
              "and rerun", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
