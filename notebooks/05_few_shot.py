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
# For each $k$ and seed, $k$ target training examples are drawn, balanced over classes (with $C$ classes, $\lfloor
# k/C \rfloor$ each and the remainder to random classes); the validation set is a $k$-shot sample as well.
# The **target's own source adapter is also trained on those $k$ examples** (so it is weak); the other sources keep
# their full-data adapters. Each run trains for the few-shot step budget of the preset (`scalearn_lite/config.py`;
# the paper's is 1000 steps); the cell after the results prints the steps each run actually took.
#
# * ScaLearn trains $\omega$ + head ($L \cdot S \cdot d$ transfer parameters);
# * Adapter trains the own adapter + head on the $k$ examples;
# * AdapterFusion trains its fusion layers ($L(3d^2 + 2d)$) + head.
#
# Different seeds draw different $k$-shot samples, so the spread over seeds is large for small $k$: report
# mean ± std.

# %% [markdown]
# ## Setup
#
# The first cell installs the course when the notebook runs in Colab and does nothing elsewhere. The second
# picks the mode (`fast`, `cpu` or `full`), shows what it means, and prints the device and the folders used.

# %%
# Colab only (elsewhere this cell does nothing): install scalearn_lite at a pinned release, then go on.
# * Colab's torch is kept (pinned to the build already installed).
# * adapters==1.3.0 moves Colab's transformers (5.x) to 4.57.x and huggingface_hub below 1.0. That is expected
#   and harmless unless transformers was already imported in this session: then you are asked to restart.
# * Not installed here: the offline embedded model (scalearn_lite[offline]) and JupyterLab (scalearn_lite[lab]).
# This cell is notebooks/colab_install.py; the README (Colab) explains REPO_URL and COMMIT.
import importlib.metadata, re, subprocess, sys

REPO_URL = "https://github.com/scalearn-lite/scalearn_lite"  # placeholder: the course's public repository
COMMIT = "PIN-A-RELEASE"  # placeholder: the tag (v1.2.3) or commit hash these notebooks were tested with


def colab_install(modules=sys.modules):
    """On Colab: pip-install the pinned course and return the pip command. Elsewhere: None, nothing done."""
    if "google.colab" not in modules:
        return None
    if not re.fullmatch(r"[0-9a-f]{7,40}|v\d+(\.\d+)*", COMMIT):
        raise ValueError(f"COMMIT = {COMMIT!r} is not a tag (v1.2.3) or a commit hash: pin the tested release")
    before = getattr(modules.get("transformers"), "__version__", None)  # imported earlier in this session?
    torch_version = importlib.metadata.version("torch")
    cmd = [sys.executable, "-m", "pip", "install", "-q", f"torch=={torch_version}", "adapters==1.3.0",
           f"scalearn_lite @ git+{REPO_URL}@{COMMIT}"]
    subprocess.run(cmd, check=True)
    if before and not before.startswith("4.57."):
        raise RuntimeError(f"transformers {before} was imported before this cell, and pip has now installed 4.57.x: "
                           "restart the session (Runtime > Restart session), then run the notebook from the top.")
    print(f"installed scalearn_lite @ {COMMIT} with adapters 1.3.0; torch kept at {torch_version}")
    return cmd


installed = colab_install()

# %%
# %matplotlib inline
from scalearn_lite import course, viz

env = course.setup(seed=0)  # mode and preset, device, data / cache / run folders, seed

# %% [markdown]
# ## Parameters

# %%
MODE = env.mode
PRESET = course.PRESET_OF_MODE[MODE]
TARGET = course.by_mode(MODE, fast="mrpc", cpu="mrpc", full="rte")
SOURCES = course.by_mode(MODE, fast=["sst2", "rte"], cpu=["sst2", "stsb", "rte"],
                         full=["sst2", "stsb", "mrpc", "cola", "qnli", "qqp"])
SOURCES = course.source_refs(SOURCES, hub=MODE == "full")
METHODS = ["scalearn", "adapter", "adapterfusion"]
K_LIST = course.by_mode(MODE, fast=[4, 16], cpu=[4, 16, 32, 100])
SEEDS = course.by_mode(MODE, fast=[0, 1], cpu=[0, 1, 2], full=[0, 1, 2, 3, 4])

# %%
results = course.run_many(TARGET, SOURCES, METHODS, PRESET, seeds=SEEDS, k_shots=K_LIST)

# %%
table = course.summary(results, by=["k_shot", "name"])
table["test (mean ± std)"].unstack("name")

# %%
viz.few_shot_plot(results);

# %%
print(f"preset {PRESET}: optimiser steps per run (the most over seeds), from each run's metrics.json")
results.pivot_table(index="k_shot", columns="name", values="steps", aggfunc="max")

# %% [markdown]
# Read the scores against these step counts: a run of a few optimiser steps shows little more than its starting
# point.
#
# ## Open the hood
#
# Two checks in plain torch: the $k$-shot training sample is class-balanced, and the std column of the table is the
# sample standard deviation over seeds.

# %%
import torch
from scalearn_lite import data

k, seed = K_LIST[0], SEEDS[0]
rows = data.load_splits(TARGET, k_shot=k, k_shot_seed=seed)["train"]
counts = torch.bincount(torch.tensor(rows["label"]))
assert len(rows) == k and counts.max() - counts.min() <= 1
print(f"k = {k}, seed {seed}: label counts {counts.tolist()} ✓")

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
# 3. Why does the spread over seeds shrink as k grows?
#
# <details><summary>Solution 1</summary>
#
# ```python
# more = course.run_many(TARGET, SOURCES, ["scalearn_uniform_pp"], PRESET, seeds=SEEDS, k_shots=K_LIST)
# course.summary(more, by=["k_shot", "name"])
# ```
# </details>
#
# <details><summary>Solution 2</summary>
#
# ```python
# import pandas as pd
#
# ho = course.run_many(TARGET, SOURCES, ["head_only"], PRESET, seeds=SEEDS, k_shots=K_LIST)
# viz.few_shot_plot(pd.concat([results, ho]));
# ```
# </details>
#
# <details><summary>Solution 3</summary>
#
# Each seed draws a different k-shot sample: with k = 4 a single unusual example moves the result a lot, with
# k = 100 the samples look alike. The validation set is k-shot too, so model selection is noisy at small k.
# </details>
#
# This is the last notebook. Back to the [quickstart](00_quickstart.ipynb), or run the whole comparison from the
# command line: `scalearn-lite transfer --help`.
