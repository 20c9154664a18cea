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
# # 02 · Why scaling? The probing experiment
#
# **You will be able to** run the paper's probing experiment (frozen adapters at a fixed ω, only a head trained), state the paper's argument for leaving ω unconstrained, and check whether this run supports it — choosing on validation, reading test only at the choice.
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/scalearn-lite/scalearn_lite/blob/main/notebooks/02_why_scaling.ipynb)
#
# Before learning ω, the paper asks a simpler question: if we *fix* how much of a frozen adapter reaches the output, and train only a head, does the amount matter?
#
# **Run time**: measured per notebook and mode on 2 CPU cores in the
# [notebooks README](https://github.com/scalearn-lite/scalearn_lite/blob/main/notebooks/README.md#run-times).
# Stage-1 adapters are cached in `data_cache/` and finished runs in `runs/notebooks/`, so a second run is quicker.

# %% [markdown]
# ## One adapter, a fixed ω
#
# Take one frozen source adapter $A$ and a fixed $\omega \in \{0, 0.1, 0.3, 0.5, 0.7, 0.9, 1\}$, the same in every
# layer, and train **only a classification head** on the target:
#
# $$ \mathrm{out}_l = \mathrm{LN}\big(\omega\, A^{l}(h) + f + x\big). $$
#
# $\omega = 0$ is the frozen encoder alone; $\omega = 1$ is the adapter exactly as trained. The paper finds that
# the score moves gradually between the two: **partial scaling controls how much of an adapter's knowledge is
# used**, so "how much" is worth learning rather than fixing at 0 or 1.
#
# ## Two adapters, a grid
#
# With two adapters — the target's own and another source — and a grid over $(\omega_1, \omega_2)$:
#
# $$ \mathrm{out}_l = \mathrm{LN}\big(\omega_1 A_1^{l}(h) + \omega_2 A_2^{l}(h) + f + x\big). $$
#
# If mixing adapters were a weighted average (as AdapterFusion's softmax imposes), only the line
# $\omega_1 + \omega_2 = 1$ would be reachable. The paper's finding (roberta-base, full data): **the best pair need
# not lie on that line** — its argument for leaving ω unconstrained. Whether a given run supports it is decided by
# the cell chosen on **validation**, not by the best test cell: read the grid below that way.
#
# **How it is computed here.** The encoder, the adapters and ω are all fixed, so the encoder's output is a fixed
# function of ω: `probing.ProbeBench` computes the first-token representation once per ω setting (eval mode) and
# trains a fresh head (the shape of the adapters classification head) on it, keeping the best validation epoch.

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
from scalearn_lite import notebook, probing, viz

env = notebook.setup(seed=0)  # mode and preset, device, data / cache / run folders, seed

# %% [markdown]
# ## Parameters

# %%
MODE = env.mode
PRESET = notebook.preset_of(MODE)
TARGET = notebook.by_mode(MODE, fast="mrpc", cpu="mrpc", full="rte")
OTHER = notebook.by_mode(MODE, fast="sst2", cpu="stsb", full="mnli")  # the second adapter of the grid
OTHER = notebook.source_refs([OTHER], hub=notebook.HUB_SET_OF_MODE[MODE])[0]
OMEGAS = notebook.by_mode(MODE, fast=[0.0, 0.5, 1.0], cpu=[0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0])
GRID = notebook.by_mode(MODE, fast=[0.0, 0.5, 1.0], cpu=[0.0, 0.3, 0.5, 0.7, 1.0],
                        full=[0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0])
PROBE_ROWS = notebook.by_mode(MODE, fast=256, cpu=1000, full=None)  # cap on target training rows
HEAD_EPOCHS = notebook.by_mode(MODE, fast=5, cpu=10, full=20)

# %%
bench = probing.ProbeBench(TARGET, [OTHER], PRESET, max_train=PROBE_ROWS)
OTHER_NAME, OWN = bench.sources  # the target's own adapter is last
METRIC = bench.task.main_metric
print(f"target {TARGET} ({METRIC}); frozen adapters {bench.sources}; "
      f"{len(bench.feats['train'])} training rows")

# %% [markdown]
# ## One adapter at a time
#
# Each line scales one adapter (the other is at 0). The point at ω = 0 is the same on both lines: the frozen encoder
# with a head.

# %%
line = probing.sweep_one(bench, OMEGAS, epochs=HEAD_EPOCHS)
viz.probe_line(line, metric=METRIC);

# %%
line.pivot(index="omega", columns="source", values="test").mul(100).round(1)

# %% [markdown]
# ## Two adapters: the grid
#
# Rows: ω₁ on the target's own adapter (growing upward); columns: ω₂ on the other source; each cell is the test
# score. The dashed line is ω₁ + ω₂ = 1. The red box is the cell that is best on **validation** — settings are
# chosen on validation, and the test score is read only at the chosen point.

# %%
grid = probing.sweep_two(bench, (OWN, OTHER_NAME), GRID, epochs=HEAD_EPOCHS)
viz.probe_grid(grid, metric=METRIC);

# %%
best = grid.loc[grid["validation"].idxmax()]
print(f"best on validation: ω₁ ({OWN}) = {best.omega_1}, ω₂ ({OTHER_NAME}) = {best.omega_2}, "
      f"sum {best.omega_1 + best.omega_2:.1f} → test {METRIC} {100 * best.test:.1f}")

# %% [markdown]
# In fast mode the tiny 2-layer encoder and 512 rows leave most cells at the majority class; run the CPU mode to see
# the structure. Whatever the numbers, note what the grid *can* show that a softmax cannot: cells off the dashed line.
#
# **What CPU mode shows** (MRPC test accuracy, heads trained 10 epochs on 1,000 MRPC rows over the frozen zoo
# adapters of MRPC and STS-B; the majority class scores 68.4; measured with
# `python notebooks/execute.py 02_why_scaling --mode cpu`, 435 s): the encoder alone (ω = 0) gives 69.4. Scaling
# MRPC's adapter up raises the score to 74.5 at ω = 0.7 and 73.8 at 1; STS-B's adapter does best at ω = 0.5
# (76.2), above itself at full strength (74.5): an adapter scaled down can beat the unscaled one, the paper's
# point, though read on test. **In the grid, this run does not support the unconstrained-ω argument**: the cell
# chosen on validation is ω = (0, 1), *on* the line ω₁ + ω₂ = 1 (test 74.5). The highest test cell, 77.2 at
# ω₁ = 1, ω₂ = 0.3 (sum 1.3), lies off the line, but it was not chosen and may be noise of 408 test rows: a setting
# read off test is not a finding. With one small model and 1,000 rows, the paper's effect does not show here.
#
# ## Open the hood
#
# With every ω at 0 the ScaLearn layer is $\mathrm{LN}(0 + f + x)$, the unmodified layer. Check it: the probe's
# features at ω = (0, 0) must equal the first-token output of a fresh base model with no adapters, computed in plain
# torch.

# %%
import torch
from scalearn_lite.config import get_preset
from scalearn_lite.encoding import make_loader
from scalearn_lite.models import load_base

plain, _ = load_base(get_preset(PRESET).model, get_preset(PRESET).num_layers)
plain.eval()
feats = bench.feats["validation"][:32]
batch = next(iter(make_loader(feats, bench.task, bench.tokenizer, batch_size=len(feats))))
batch.pop("labels")
with torch.no_grad():
    reference = plain.base_model(**batch).last_hidden_state[:, 0]  # (N, d) first token
probe_x, _ = bench.features([0.0, 0.0])["validation"]
atol = 1e-4 if bench.precision == "fp32" else 5e-2  # on a GPU the bench computes in fp16/bf16
assert torch.allclose(probe_x[: len(feats)], reference, atol=atol)
print("ω = 0 gives the frozen encoder exactly ✓", tuple(reference.shape))

# %% [markdown]
# ## Exercises
#
# 1. Add negative values (e.g. −0.5) to `OMEGAS`. Does flipping an adapter ever help?
# 2. Swap `OTHER` for another source (e.g. `"rte"` or `"sst2"`): does the best cell move?
# 3. Why can't AdapterFusion reach a cell with $\omega_1 + \omega_2 = 1.5$?
#
# <details><summary>Solution 1</summary>
#
# ```python
# probing.sweep_one(bench, [-0.5, 0.0, 0.5, 1.0], epochs=HEAD_EPOCHS)
# ```
# Usually not on its own, but the learned ScaLearn ω sometimes goes negative for a few units or layers.
# </details>
#
# <details><summary>Solution 2</summary>
#
# ```python
# bench2 = probing.ProbeBench(TARGET, ["rte"], PRESET, max_train=PROBE_ROWS)
# viz.probe_grid(probing.sweep_two(bench2, (bench2.sources[-1], bench2.sources[0]), GRID, epochs=HEAD_EPOCHS));
# ```
# </details>
#
# <details><summary>Solution 3</summary>
#
# Its attention weights come from a softmax over the sources, so they are non-negative and sum to 1 in every token
# and layer: its mix is always a point on the simplex. (Its value matrix can rescale afterwards, at the cost of
# $d^2$ parameters per layer.)
# </details>
#
# **Next:** [03 · ScaLearn transfer](03_scalearn_transfer.ipynb) — learning ω instead of fixing it.
