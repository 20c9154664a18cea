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
# # 00 · Quickstart: learn to scale frozen adapters
#
# **You will be able to** train one adapter per source task, transfer them to a target task with ScaLearn, and read the learned scaling coefficients ω as a heatmap.
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/scalearn-lite/scalearn_lite/blob/main/notebooks/00_quickstart.ipynb)
#
# ScaLearn (Frohmann et al., *Findings of ACL 2024*) in three steps: train one small adapter per **source** task, freeze them all, and learn only how much of each to use on a **target** task. Then read what it learned as a heatmap.
#
# **Run time**: measured per notebook and mode on 2 CPU cores in the
# [notebooks README](https://github.com/scalearn-lite/scalearn_lite/blob/main/notebooks/README.md#run-times).
# Stage-1 adapters are cached in `data_cache/` and finished runs in `runs/notebooks/`, so a second run is quicker.

# %% [markdown]
# ## The idea in one formula
#
# A transformer layer $l$ computes the attention block output $x$ and the feed-forward output $f$ (before its
# residual), and ends with its own LayerNorm $\mathrm{LN}$. A *bottleneck adapter* $A_i$ trained on source task $i$
# reads $h = \mathrm{LN}(f + x)$ and adds a small correction. ScaLearn keeps $S$ such adapters **frozen** and mixes
# their outputs with learned scaling coefficients $\omega$:
#
# $$
# h = \mathrm{LN}(f + x), \qquad
# \mathrm{out}_l = \mathrm{LN}\Big( \sum_{i=1}^{S} \omega_i^{l} \odot A_i^{l}(h) \;+\; f \;+\; x \Big),
# \qquad A_i(h) = W^{\text{up}}_i\,\mathrm{ReLU}(W^{\text{down}}_i h + b^{\text{down}}_i) + b^{\text{up}}_i .
# $$
#
# * Only $\omega$ (and a new classification head) is trained; the encoder and every adapter stay frozen.
# * $\omega$ is **unconstrained**: no softmax, no sum-to-one. $\omega_i = 0$ switches adapter $i$ off, $\omega_i = 1$
#   uses it as trained, $\omega_i > 1$ amplifies it and $\omega_i < 0$ flips it.
# * With $\omega$ one-hot on source $k$ the layer is exactly the single adapter $k$.
# * $\omega$ starts at $2/S$ (plus noise of std 0.001) and a dropout of 0.3 acts on $\omega$ itself (none for
#   ScaLearnUniform++).
#
# | variant | $\omega$ per layer | shared across layers | transfer parameters ($L$ layers, width $d$, $S$ sources) |
# |---|---|---|---|
# | ScaLearn | $S \times d$ | no | $L \cdot S \cdot d$ |
# | ScaLearnUniform | $S \times 1$ | no | $L \cdot S$ |
# | ScaLearn++ | $S \times d$ | yes | $S \cdot d$ |
# | ScaLearnUniform++ | $S \times 1$ | yes | $S$ |

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
from scalearn_lite import analysis, notebook, viz

env = notebook.setup(seed=0)  # mode and preset, device, data / cache / run folders, seed

# %% [markdown]
# ## Parameters
#
# The only cell to edit. The target's own stage-1 adapter is always added as the **last** source (the paper follows
# AdapterFusion's protocol), so `SOURCES` lists only the *other* tasks.

# %%
MODE = env.mode  # "fast", "cpu" or "full"
PRESET = notebook.preset_of(MODE)  # tiny / cpu / colab (see scalearn_lite/config.py)
TARGET, SOURCES = notebook.defaults(MODE)  # e.g. cpu: stsb from sst2, qnli, mrpc, rte (notebook.DEFAULT_TASKS)
SEED = 0

# %% [markdown]
# ## Step 1 — one adapter per source task
#
# Each source adapter is trained on its own task with the encoder frozen (stage 1), on the *source* budget (in CPU
# mode 4,000 rows × 3 epochs: the source zoo). The target's own adapter is trained here too, last, on the *target*
# budget (CPU mode: 256 rows): that is the adapter the transfer loads and the "Adapter" row of notebook 03. All are
# cached in `data_cache/adapters/`, so later notebooks reuse them.

# %%
sources_table = notebook.train_sources(SOURCES, PRESET, target=TARGET)
sources_table[[c for c in ("role", "metric", "test", "validation", "train rows", "steps", "seconds") if c in sources_table]]

# %% [markdown]
# ## Step 2 — transfer: learn ω on the target
#
# `notebook.run` calls `scalearn_lite.transfer.transfer(...)` and writes a run folder (`metrics.json`, `omega.json`,
# `omega.safetensors`, `history.csv`, the head). A finished folder is reused, so re-running the cell is instant.

# %%
res = notebook.run(TARGET, SOURCES, "scalearn", PRESET, seed=SEED)
m = res.metrics
print(f"ScaLearn → {m['target']}: test {m['metric']} {100 * m['test_metric']:.1f} "
      f"(validation {100 * m['validation_metric']:.1f}); sources {m['sources']}")
print(f"transfer parameters: {m['transfer_params']:,}   run folder: {res.path}")

# %% [markdown]
# ## Step 3 — read ω
#
# One row per layer, one column per source adapter (the target's own last); each cell is ω averaged over the $d$
# hidden units, coloured around its start value $2/S$: white = unchanged by training, red = grown, blue = shrunk.
#
# The second figure shows what the first hides for a vector ω: per layer × source, the mean of $\omega - 2/S$ over
# the hidden units (top) and the mean of $|\omega - 2/S|$ (bottom: how far the units moved, whichever way).
#
# **What CPU mode shows** (STS-B, 256 target rows, 48 optimiser steps with ω at its own rate 0.09, so that it can
# travel at most 0.09 · 24.5 = 2.2; seed 0; measured with `python notebooks/execute.py 00_quickstart --mode cpu`):
# the run scores 77.6 test Pearson against 13.8 for STS-B's own adapter (the last row of the table above). The
# heatmap of ω's means stays pale — 0.36 to 0.47 around the start 2/S = 0.40 — while the units moved: the mean
# $|\omega - 2/S|$ is 0.24–0.35 in every cell and single units range from −0.86 to 1.77. ScaLearn's
# $L \cdot S \cdot d$ coefficients move unit by unit, in both directions. Whether that movement *helps* cannot be
# read off these figures: notebook 03 compares ScaLearn with ω fixed at its start 2/S over three seeds.

# %%
frame = analysis.omega_frame(res)
viz.omega_heatmap(frame, title=f"ScaLearn ω → {TARGET}");

# %%
viz.movement_heatmaps({"scalearn": res});  # top: mean of ω − 2/S; bottom: mean |ω − 2/S| over hidden units

# %% [markdown]
# ## Open the hood
#
# The heatmap is built from `omega.json`. Recompute it from the raw parameter in `omega.safetensors` with plain torch: ω of
# ScaLearn is one tensor of shape $(L, S, d)$, the heatmap is its mean over the last axis, and its size is the
# number of transfer parameters $L \cdot S \cdot d$.

# %%
import json
import torch
from safetensors import safe_open

with safe_open(str(res.path / "omega.safetensors"), framework="pt") as fh:  # plain tensors: no pickle
    omega = fh.get_tensor("omega")  # (L, S, d): layers × sources × hidden units
    sources = json.loads(fh.metadata()["sources"])
L, S, d = omega.shape
assert sources == list(frame.columns)
assert torch.allclose(omega.mean(dim=-1), torch.tensor(frame.values, dtype=omega.dtype), atol=1e-6)
assert omega.numel() == L * S * d == m["transfer_params"]
print(f"ω: {L} layers × {S} sources × {d} units = {omega.numel():,} parameters; heatmap = mean over units ✓")

# %% [markdown]
# ## Step 4 — what each source adds
#
# ω alone hides that the source adapters' outputs $A_i(h)$ differ in size, and for vector ω the mean over units
# hides how the units moved. `analysis.run_contributions` runs up to 200 validation rows through the trained model and
# measures, per layer and source, $\lVert \omega_i \odot A_i(h) \rVert / \lVert f + x \rVert$ averaged over the
# rows' tokens: how much each source actually adds to the layer's output, relative to what the layer computes
# without the adapters (0 = nothing).

# %%
contributions = analysis.run_contributions(res)
viz.contribution_heatmap(contributions, title=f"what each source adds → {TARGET}");

# %% [markdown]
# **What CPU mode shows** (same run): what the sources add differs far more than their ω. STS-B's own adapter adds
# 0.13–0.19 of the layer's output in layers 0–3, QNLI up to 0.22 (layer 3), MRPC up to 0.11, SST-2 at most 0.07 and
# RTE 0.03 or less; in the last layer no source adds more than 0.02. With every ω within about ±0.07 of 2/S on
# average, this is mostly the size of each adapter's own output $A_i(h)$: the figure shows which adapters are loud
# in which layer, not what was learned — with ω fixed at 2/S it would look much the same.

# %% [markdown]
# ## Exercises
#
# 1. Run the ScaLearnUniform++ variant (`"scalearn_uniform_pp"`) on the same target. How many numbers does it learn,
#    and why are all rows of its heatmap identical?
# 2. How many transfer parameters does ScaLearn need for roberta-base ($L = 12$, $d = 768$) with $S = 8$ sources?
#    Compare with AdapterFusion's $3d^2 + 2d$ per layer.
# 3. Train the control `"fixed_omega"` — ω frozen at its start 2/S, only the head trained — on the same target and
#    seed, and compare its test score with ScaLearn's. What does the difference measure, and what can one seed not
#    tell you?
#
# <details><summary>Solution 1</summary>
#
# ```python
# res_u = notebook.run(TARGET, SOURCES, "scalearn_uniform_pp", PRESET, seed=SEED)
# print(res_u.metrics["transfer_params"])        # S: one scalar per source, shared by every layer
# viz.omega_heatmap(analysis.omega_frame(res_u));     # "++": one ω for all layers, so every row is the same
# ```
# </details>
#
# <details><summary>Solution 2</summary>
#
# $L \cdot S \cdot d = 12 \cdot 8 \cdot 768 = 73{,}728$. AdapterFusion: $12 \cdot (3 \cdot 768^2 + 2 \cdot 768) =
# 21{,}252{,}096$, so ScaLearn needs 0.347% of it. The package counts them from instantiated modules:
# `scalearn-lite params --hidden-size 768 --num-layers 12 --sources 8`.
# </details>
#
# <details><summary>Solution 3</summary>
#
# ```python
# fixed = notebook.run(TARGET, SOURCES, "fixed_omega", PRESET, seed=SEED)
# print(f"ScaLearn {100 * m['test_metric']:.1f}, ω fixed at 2/S {100 * fixed.metrics['test_metric']:.1f}")
# ```
# Same rows, steps, head and seed: the difference is what learning ω added on top of its start value (the start
# itself, 2/S, is not learned). One seed's difference can be the noise of one data order and head initialisation;
# notebook 03 runs three seeds of both and reads the difference against their spread.
# </details>
#
# **Next:** [01 · Source adapters](01_source_adapters.ipynb) — what an adapter is and where it sits.
