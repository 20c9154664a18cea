# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: -jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 05 · Few-shot transfer
#
# **You will be able to** run few-shot transfer with k target examples and judge ScaLearn, Adapter and AdapterFusion by their mean and spread over seeds.
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/scalearn-lite/scalearn_lite/blob/main/notebooks/05_few_shot.ipynb)
#
# With only k target examples, the target's own adapter has little to learn from; ScaLearn can lean on the other sources. Compare ScaLearn, a single Adapter and AdapterFusion for k ∈ {4, 16, 32, 100}.
#
# **Run time**: measured per notebook and mode on 2 CPU cores in the
# [notebooks README](https://github.com/scalearn-lite/scalearn_lite/blob/main/notebooks/README.md#run-times).
# Stage-1 adapters are cached in `data_cache/` and finished runs in `runs/notebooks/`, so a second run is quicker.

# %% [markdown]
# ## Protocol
#
# For each $k$ the training rows are the first $k$ of the target's train split shuffled with seed 42: the same rows
# for every seed, and a smaller $k$'s rows are the first ones of a larger $k$'s (the authors' protocol). Validation
# uses the held-out 10% split (at most the preset's `few_shot_max_validation` rows), the test set is the official
# dev split as everywhere. The **target's own source adapter is also trained on those $k$ rows** (so it is weak);
# the other sources keep their full-data adapters. Each run has the preset's few-shot step budget
# (`few_shot_steps`, overriding epochs; the paper's is 1000) and stops early when the validation metric has not
# improved for `few_shot_patience` epochs; the cell after the results prints both, and the steps each run took.
#
# * ScaLearn trains $\omega$ + head ($L \cdot S \cdot d$ transfer parameters);
# * Adapter trains the own adapter + head on the $k$ examples;
# * AdapterFusion trains its fusion layers ($L(3d^2 + 2d)$) + head.
#
# Seeds do not change the $k$ rows; they change the initialisation and the order of training, so the spread over
# seeds shows how much a method depends on those: report mean ± std.

# %% [markdown]
# ## Setup
#
# The first cell installs the course when the notebook runs in Colab and does nothing elsewhere. The second
# picks the mode (`fast`, `cpu` or `full`), shows what it means, and prints the device and the folders used.

# %%
# Colab only (elsewhere this cell does nothing): install scalearn_lite from SOURCE, then go on.
# * SOURCE is the one setting, the same in every notebook: a published version ("scalearn_lite==1.2.3") or a git URL
#   at a tag or commit ("git+https://github.com/<owner>/scalearn_lite@v1.2.3"). Whoever publishes the course sets it
#   with `python notebooks/publish.py <SOURCE>`, which also points the Colab badges there. Empty: this cell installs
#   nothing and prints what to set.
# * Colab's torch is kept. adapters==1.3.0 moves Colab's transformers (5.x) to 4.57.x and huggingface_hub below 1.0:
#   harmless unless transformers was already imported in this session (then: restart, as the cell says). No
#   downgrade at all on the runtime version 2026.01 (Runtime > Change runtime type; see notebooks/README.md).
import importlib.metadata, re, subprocess, sys

SOURCE = ""  # e.g. "scalearn_lite==1.2.3" or "git+https://github.com/<owner>/scalearn_lite@v1.2.3"
_VERSION = r"scalearn[_-]lite==\d+(\.\d+)*"
_GIT = r"git\+https://[\w.-]+/[\w.-]+/[\w.-]+@(v\d+(\.\d+)*|[0-9a-f]{7,40})"


def pip_spec(source):
    """The pip requirement for SOURCE (None when it is empty); a branch or an unpinned URL: ValueError."""
    source = source.strip()
    if not source:
        return None
    if re.fullmatch(_VERSION, source):
        return source
    if re.fullmatch(_GIT, source):
        return f"scalearn_lite @ {source}"
    raise ValueError(f"SOURCE = {source!r} is not pinned: use scalearn_lite==1.2.3 or a git URL ending in @v1.2.3 "
                     "or @<commit hash> (a branch such as main changes under the notebooks)")


def colab_install(source=None, modules=sys.modules):
    """On Colab: pip-install SOURCE and return the pip command (None, with what to set, when SOURCE is empty).
    Elsewhere: None, nothing done."""
    if "google.colab" not in modules:
        return None
    spec = pip_spec(SOURCE if source is None else source)
    if spec is None:
        print("scalearn_lite is not installed: SOURCE is empty in this cell. Set it to the course's release, e.g.\n"
              '    SOURCE = "scalearn_lite==1.2.3"\nor\n'
              '    SOURCE = "git+https://github.com/<owner>/scalearn_lite@v1.2.3"\n'
              "and run this cell again (or ask whoever shared the notebook for the link of a published copy).")
        return None
    before = getattr(modules.get("transformers"), "__version__", None)  # imported earlier in this session?
    torch_version = importlib.metadata.version("torch")
    cmd = [sys.executable, "-m", "pip", "install", "-q", f"torch=={torch_version}", "adapters==1.3.0", spec]
    subprocess.run(cmd, check=True)
    if before and not before.startswith("4.57."):  # stop here: the next cells would run the old transformers
        raise RuntimeError(f"transformers {before} was imported before this cell, and pip has now installed 4.57.x: "
                           "restart the session (Runtime > Restart session), then run the notebook from the top.")
    print(f"installed {spec} with adapters 1.3.0; torch kept at {torch_version}")
    return cmd


installed = colab_install()

# %%
# %matplotlib inline
from scalearn_lite import notebook, viz

env = notebook.setup(seed=0)  # mode and preset, device, data / cache / run folders, seed

# %% [markdown]
# ## Parameters

# %%
MODE = env.mode
PRESET = notebook.preset_of(MODE)
TARGET, SOURCES = notebook.defaults(MODE)  # e.g. cpu: stsb from sst2, qnli, mrpc, rte (notebook.DEFAULT_TASKS)
METHODS = ["scalearn", "adapter", "adapterfusion"]
K_LIST = notebook.by_mode(MODE, fast=[4, 16], cpu=[4, 16, 32, 100])
SEEDS = notebook.by_mode(MODE, fast=[0, 1], cpu=[0, 1, 2])

# %%
results = notebook.run_many(TARGET, SOURCES, METHODS, PRESET, seeds=SEEDS, k_shots=K_LIST)

# %%
table = notebook.summary(results, by=["k_shot", "name"])
table["test (mean ± std)"].unstack("name")

# %%
viz.few_shot_plot(results);

# %%
from scalearn_lite.config import get_preset

cfg = get_preset(PRESET)
print(f"preset {cfg.name}: a few-shot run may take {cfg.few_shot_steps} optimiser steps and stops early after "
      f"{cfg.few_shot_patience} epochs without a better validation metric. Steps taken (most over seeds):")
results.pivot_table(index="k_shot", columns="name", values="steps", aggfunc="max")

# %% [markdown]
# Read the scores against these step counts: a run of a few optimiser steps shows little more than its starting
# point.
#
# **What CPU mode showed before ω had its own rate** (git `30f1c61`, ω at the paper's 6e-3; not re-measured with the
# cpu preset's ω rate 0.09, which changes the ScaLearn row; STS-B test Pearson, mean ± std over 3 seeds,
# k = 4 / 16 / 32 / 100; 36 runs in 1,053 s with the source zoo cached; measured with
# `python notebooks/execute.py 05_few_shot --mode cpu`): ScaLearn
# 49.5 ± 5.3 / 63.2 ± 3.1 / 66.7 ± 0.4 / 65.0 ± 1.0, Adapter −6.7 ± 1.6 / 6.4 ± 5.6 / 5.7 ± 0.6 / 23.7 ± 2.8,
# AdapterFusion 50.3 ± 19.5 / 51.5 ± 16.8 / 66.1 ± 1.3 / 61.1 ± 9.4. With 4 labelled pairs the frozen sources give
# ScaLearn about 50 Pearson, where the target's own adapter learns nothing; AdapterFusion reaches similar means with
# a far larger spread over seeds. No run used more than 116 of its 200 allowed steps (early stopping).
#
# ## Open the hood
#
# Two checks: every seed trains on the same $k$ rows, nested across $k$ (with $k = 4$ the classes of a
# classification target need not be balanced: look at the label counts; STS-B prints its scores' range), and the
# std column of the table is the sample standard deviation over seeds, recomputed in plain torch.

# %%
import torch
from scalearn_lite.data import load_task_data
from scalearn_lite.tasks import get_task

k, big = K_LIST[0], K_LIST[-1]
rows = {s: load_task_data(get_task(TARGET), cfg, k_shot=big, seed=s)["train"] for s in SEEDS}
small = load_task_data(get_task(TARGET), cfg, k_shot=k, seed=SEEDS[-1])["train"]
assert all(r == rows[SEEDS[0]] for r in rows.values()) and small == rows[SEEDS[0]][:k]
labels = torch.tensor([r["label"] for r in small])
seen = (f"label counts {torch.bincount(labels).tolist()}" if get_task(TARGET).problem != "regression"
        else f"scores {labels.min().item():.1f}–{labels.max().item():.1f}")  # STS-B: similarity scores 0–5
print(f"k = {big}: the same rows for seeds {SEEDS}; k = {k}: its first {k} rows, {seen} ✓")

name = results["name"].iloc[0]
scores = torch.tensor(results.query("k_shot == @k and name == @name")["test_metric"].tolist(), dtype=torch.float64)
expected = 100 * scores.std().item() if len(scores) > 1 else 0.0  # torch.std: unbiased, like pandas
assert abs(table.loc[(k, name), "std"] - expected) < 1e-9
print(f"{name}, k = {k}: std over {len(scores)} seeds = {expected:.2f} ✓")

# %% [markdown]
# ## Exercises
#
# 1. Add `"scalearn_uniform_pp"` (S transfer parameters) to `METHODS`. Is it more stable across seeds at small k?
# 2. Add `"head_only"`: at which k does any adapter-based method beat a frozen encoder with a head?
# 3. Every seed trains on the same k rows. What still differs between two seeds?
#
# <details><summary>Solution 1</summary>
#
# ```python
# more = notebook.run_many(TARGET, SOURCES, ["scalearn_uniform_pp"], PRESET, seeds=SEEDS, k_shots=K_LIST)
# notebook.summary(more, by=["k_shot", "name"])
# ```
# </details>
#
# <details><summary>Solution 2</summary>
#
# ```python
# import pandas as pd
#
# ho = notebook.run_many(TARGET, SOURCES, ["head_only"], PRESET, seeds=SEEDS, k_shots=K_LIST)
# viz.few_shot_plot(pd.concat([results, ho]));
# ```
# </details>
#
# <details><summary>Solution 3</summary>
#
# The initial ω ($2/S$ plus noise of std 0.001) and the new head's initial weights, the order of the batches and
# ω dropout's masks. The Adapter row also trains the target's own adapter with each seed, while ScaLearn and
# AdapterFusion take it from seed 0 for every seed (`own_adapter_seed` in the preset), as the authors do.
# </details>
#
# This is the last notebook. Back to the [quickstart](00_quickstart.ipynb), or run the whole comparison from the
# command line: `scalearn-lite transfer --help`.
