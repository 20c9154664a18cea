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
# # 04 · Reading the heatmaps
#
# **You will be able to** read ω per layer × source for every variant, set it beside AdapterFusion's attention, and change ω by hand to see what each source adds.
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/scalearn-lite/scalearn_lite/blob/main/notebooks/04_reading_the_heatmaps.ipynb)
#
# ω per layer × source for each variant, how ω moves during training, AdapterFusion's attention next to it, a target × source matrix, and controls to set ω by hand.
#
# **Run time**: measured per notebook and mode on 2 CPU cores in the
# [notebooks README](https://github.com/scalearn-lite/scalearn_lite/blob/main/notebooks/README.md#run-times).
# Stage-1 adapters are cached in `data_cache/` and finished runs in `runs/notebooks/`, so a second run is quicker.

# %% [markdown]
# ## What the pictures mean
#
# * **ω per layer × source.** Cell $(l, i)$ is $\omega_i^l$ averaged over the $d$ hidden units. The panels per
#   variant use a diverging palette centred at ω's start value $2/S$: white = unchanged by training, red = grown,
#   blue = shrunk (ω is unconstrained and may go below 0, which switches a source's sign).
#   Rows of the "++" variants are identical by construction (one ω for every layer).
# * **Spread over units.** For the vector variants each cell hides $d$ values; their standard deviation shows how
#   selectively a source is used unit by unit.
# * **AdapterFusion attention.** Fusion mixes the same adapter outputs with a softmax over sources per token,
#   with query and key projections $q$, $k$ and a temperature $\tau$:
#   $\alpha^l = \mathrm{softmax}_i\big(q(h)^\top k(A_i^l(h)) \,/\, \tau\big)$, averaged here over every token of
#   the validation set. $\tau = 1$ in the `dynamic` fusion used here (adapters' `temperature=True` would start it at
#   50 and lower it by 0.05 per forward pass down to 1). Attention rows sum to 1; ω rows need not.
# * **What each source adds.** $\lVert \omega_i \odot A_i(h) \rVert / \lVert f + x \rVert$ per layer and source, over
#   validation tokens: ω times the size of the adapter's output, against the layer's own output.
# * **Target × source.** With ScaLearnUniform++ each target's ω is $S$ numbers: one row per target, one column per
#   source, the target's own adapter outlined; white is again the start value $2/S$. All plots of ω here and in
#   the other notebooks share these colours (`viz.omega_heatmap(..., center=0.0)` centres one at 0 instead).

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
from scalearn_lite import analysis, notebook, viz, widgets

env = notebook.setup(seed=0)  # mode and preset, device, data / cache / run folders, seed

# %% [markdown]
# ## Parameters

# %%
MODE = env.mode
PRESET = notebook.preset_of(MODE)
TARGET, SOURCES = notebook.defaults(MODE)  # e.g. cpu: stsb from sst2, qnli, mrpc, rte (notebook.DEFAULT_TASKS)
VARIANTS = ["scalearn", "scalearn_uniform", "scalearn_pp", "scalearn_uniform_pp"]
MATRIX_TASKS = notebook.by_mode(MODE, fast=["sst2", "rte", "mrpc"], cpu=["sst2", "stsb", "rte", "mrpc"],
                                full=["rte", "mrpc", "stsb", "cola"])  # each target's sources: the other tasks
MATRIX_TARGETS = notebook.by_mode(MODE, fast=["mrpc", "rte"], cpu=["mrpc", "rte", "stsb"],
                                  full=["rte", "mrpc", "stsb", "cola"])
MATRIX_VARIANT = "scalearn_uniform_pp"
FUSION_STEPS = notebook.by_mode(MODE, fast=10, cpu=None)  # None: the preset's full budget
SCORER_ROWS = notebook.by_mode(MODE, fast=64, cpu=300, full=None)  # validation rows scored by the ω sliders
SEED = 0

# %% [markdown]
# ## ω per layer × source, one panel per variant

# %%
runs = {v: notebook.run(TARGET, SOURCES, v, PRESET, seed=SEED).path for v in VARIANTS}
viz.variant_heatmaps(runs);

# %% [markdown]
# ## What moved
#
# A heatmap of ω's mean over hidden units hides a vector ω whose units moved in both directions. Per layer × source,
# the top row is the signed mean change of ω from its start $2/S$ (what the heatmap above shows, minus $2/S$), the
# bottom row the mean of $|\omega - 2/S|$ over hidden units: how far the units moved, whichever way (0 = not at all;
# for the scalar variants it is simply $|\omega - 2/S|$).

# %%
viz.movement_heatmaps(runs);

# %% [markdown]
# **What CPU mode shows** (STS-B, 256 rows × 6 epochs = 48 steps, ω at its own rate 0.09, sources SST-2, QNLI, MRPC,
# RTE and STS-B's own adapter, seed 0; measured with `python notebooks/execute.py 04_reading_the_heatmaps --mode cpu`
# after notebook 03): with S = 5, white is 0.40. **The vector variants' means stay near white** (ScaLearn 0.36–0.47,
# ScaLearn++ within ±0.05 of 0.40), **but their units moved**: the mean $|\omega - 2/S|$ is 0.24–0.35 in every
# cell for both, about the same for every source and layer — the "What moved" figure's bottom row. The scalar
# variants move where the vector ones do not: ScaLearnUniform++ lowers SST-2's ω to −0.21 (a sign flip, 0.61
# below the start) and RTE's to 0.20, the other three stay within 0.05 of 0.40; ScaLearnUniform lowers SST-2 in
# layers 0–1 (to −0.24 and −0.35) and STS-B's own adapter in layers 4–5 (to −0.39 and −0.15) and raises MRPC and
# RTE in the last layer (to 1.14 and 1.15). Movement is not usefulness: notebook 03 scores these runs against ω fixed at 2/S
# (the vector variants gain about 15 points over it, ScaLearnUniform loses in two of three seeds).

# %% [markdown]
# ## ω during training
#
# `history.csv` records ω after every epoch (mean over hidden units). The line is the mean over layers, the band
# spans the layers' minimum to maximum; the dashed line is the start value 2/S.

# %%
viz.omega_over_training(runs["scalearn"]);

# %%
viz.omega_over_training(runs["scalearn"], what="abs");  # how far the units moved, mean |ω − 2/S|, per epoch

# %% [markdown]
# **What CPU mode shows**: ScaLearn's layer means stay near the dashed line (0.36–0.47 over six epochs), while the
# mean $|\omega - 2/S|$ over units grows from 0.17 after the first epoch to 0.30 after the sixth (second figure):
# the units keep moving when the means have settled. The validation loss, by which the kept epoch is chosen, is
# lowest after epoch 5 (0.97).

# %% [markdown]
# ## What each source adds
#
# ω is a gain; what reaches the layer is $\omega_i \odot A_i(h)$, and the adapters' outputs differ in size. Per
# layer and source, the mean over validation tokens (up to 200 rows) of
# $\lVert \omega_i \odot A_i(h) \rVert / \lVert f + x \rVert$: the share each source adds to the layer's output
# (0 = nothing), one colour scale for the four variants.

# %%
viz.variant_contributions({v: analysis.run_contributions(path) for v, path in runs.items()});

# %% [markdown]
# **What CPU mode shows**: the two vector variants draw nearly the same picture — STS-B's own adapter adds 0.13–0.19
# of the layer's output in layers 0–3, QNLI most in layer 3 (0.22, ScaLearn++ 0.27), MRPC up to 0.12, SST-2 up to
# 0.07, RTE 0.04 or less, nothing above 0.03 in the last layer — because their ω moved per unit, not on average, and
# what reaches the layer is then mostly the size of each adapter's output. ScaLearnUniform++ adds less (at most 0.20,
# QNLI in layer 3; RTE 0.01 or less where its ω fell to 0.20); ScaLearnUniform almost nothing in layer 4 (0.00–0.02),
# where its ω fell for SST-2, QNLI, MRPC and STS-B.

# %% [markdown]
# ## AdapterFusion attention next to ω
#
# `transfer()` saves AdapterFusion's layers in its run folder (`fusion/`) and `load_run` rebuilds the model from
# it, so notebook 03's AdapterFusion run could be read back. This notebook trains its own with `notebook.train_fusion`
# (same target and sources, `FUSION_STEPS` optimiser steps: a short run in fast mode, the preset's budget
# otherwise) and keeps it in memory, so that it runs without notebook 03. `analysis.fusion_attention_frame` runs
# it with `output_adapter_fusion_attentions=True` and averages the attention over every non-padding token.

# %%
fusion = notebook.train_fusion(TARGET, SOURCES, PRESET, seed=SEED, max_steps=FUSION_STEPS)
attention = analysis.fusion_attention_frame(fusion.net, analysis.batches(fusion, "validation"))
viz.compare_fusion_scalearn(attention, analysis.omega_frame(runs["scalearn"]));

# %% [markdown]
# **What CPU mode shows**: AdapterFusion, trained on the same rows, commits where ScaLearn's means do not: its
# attention piles onto STS-B's own adapter in layer 0 (0.80), onto QNLI in layers 1 and 3 (0.80, 0.97) and onto RTE
# in layer 4 (0.66), while ScaLearn's means stay within 0.36–0.47 (its units moved, which a mean does not show).

# %% [markdown]
# ## Open the hood
#
# Recompute layer 0's fusion attention by hand: catch the inputs of the fusion module (the query $h$ and the stacked
# adapter outputs), apply its query and key projections, divide by the temperature $\tau$ (`module.T`) and take a
# softmax over the sources.

# %%
import numpy as np
import torch
from scalearn_lite.models import encoder_layers

name = fusion.net.active_adapters.name
module = encoder_layers(fusion.net)[0].output.adapter_fusion_layer[name]
seen = {}
hook = module.register_forward_hook(lambda mod, inp, out: seen.update(inp=inp))
batch = next(iter(analysis.batches(fusion, "validation", batch_size=4)))
batch.pop("labels")
with torch.no_grad():
    out = fusion.net(**batch, output_adapter_fusion_attentions=True)
hook.remove()

# %%
query, key = seen["inp"][0], seen["inp"][1]  # (B, T, d) and (B, T, S, d): the S adapters' outputs
with torch.no_grad():
    scores = (module.query(query).unsqueeze(2) * module.key(key)).sum(-1)  # (B, T, S)
    by_hand = torch.softmax(scores / module.T, dim=-1)  # module.T: the temperature τ (1 here)
library = out["adapter_fusion_attentions"][name][0]["output_adapter"]  # (B, T, S)
assert np.allclose(by_hand.cpu().numpy(), library, atol=1e-5)
print(f"fusion attention = softmax over sources of q(h)·k(A_i(h)) / τ, τ = {module.T} ✓", library.shape)

# %% [markdown]
# ## Target × source matrix (ScaLearnUniform++)

# %%
matrix_runs = {t: notebook.run(t, [s for s in MATRIX_TASKS if s != t], MATRIX_VARIANT, PRESET, seed=SEED).path
               for t in MATRIX_TARGETS}
viz.target_source_matrix(matrix_runs, columns=MATRIX_TASKS);

# %% [markdown]
# **What CPU mode shows** (each target against the other three of SST-2, STS-B, RTE, MRPC plus its own adapter, so
# 2/S = 0.50): the scalar ω moved far at this rate. RTE raises its own adapter to 0.94 and sets STS-B's to −0.42;
# MRPC raises RTE's adapter to 0.80 and drops its own and SST-2's to −0.02; STS-B raises its own to 0.85 and MRPC's
# to 0.70. A large ω on RTE's own adapter is not a sign that it helps: that adapter is at chance on RTE itself
# (exercise 4).

# %% [markdown]
# ## Explore: choose target, variant and layer
#
# The controls need a live kernel (Jupyter or Colab). On GitHub or in a headless run they do not render; the static
# figures above show the same heatmaps.

# %%
browse = {TARGET: dict(runs)}
for t, path in matrix_runs.items():
    browse.setdefault(t, {})[MATRIX_VARIANT] = path
widgets.run_browser(browse)

# %% [markdown]
# ## Set ω by hand
#
# Reload the ScaLearn run and overwrite ω with one value per source (the same in every layer and unit). The table is
# the static version: the learned ω, the uniform 1/S, all zeros, and each source alone (one-hot, which is exactly
# that single adapter). The sliders below re-score the validation rows whenever one is released.

# %%
scorer = analysis.OmegaScorer(runs["scalearn"], max_rows=SCORER_ROWS)
scorer.table().round(1)

# %% [markdown]
# **What CPU mode shows** (Pearson on 300 validation rows, the head trained with the learned ω): the learned ω 68.7;
# ω set back to its start, uniform 2/S, 52.9; uniform 1/S 37.6; all ω = 0 −1.5; one source alone: MRPC 37.0, STS-B's
# own 36.0, QNLI 23.7, RTE 2.4, SST-2 −1.6. The learned ω beats its own start by 15.8 — but this head was trained
# with the learned ω, so every other row is a model the head never saw; the fair comparison with a start that is not
# learned is notebook 03's "ω fixed at 2/S" row, whose head was trained at 2/S (59.4 ± 2.1 test against ScaLearn's
# 76.2 ± 2.5).

# %%
widgets.omega_sliders(scorer, scorer.sources, start=scorer.learned_per_source(), metric=scorer.metric)

# %% [markdown]
# ## Exercises
#
# 1. Write one ScaLearn layer yourself. Catch what the last layer's output block of the reloaded run receives
#    (the FFN hidden state and the attention output $x$) with a forward hook, then compute
#    $\mathrm{LN}\big(\sum_i \omega_i \odot A_i(h) + f + x\big)$ with $h = \mathrm{LN}(f + x)$ from the saved ω and the
#    model's source bank, and check it against what the block returned.
# 2. Compare one row of fusion attention with the same row of ω: which one can exceed 1 in total, and why?
# 3. With the sliders, set every ω to 0. Why is the score not the head-only baseline's score?
# 4. RTE's own adapter scores about chance on RTE itself (the zoo table of notebook 00: 49.1 % against a majority
#    class of 52.7 %). With the sliders, give RTE's adapter a large ω (2, then 4) and the others their learned
#    values: does a large ω make a useless adapter useful? What does the "what each source adds" figure say RTE
#    adds at its learned ω?
#
# <details><summary>Solution 1</summary>
#
# ```python
# import torch
# import torch.nn.functional as F
# from scalearn_lite.encoding import make_loader
# from scalearn_lite.models import encoder_layers
#
# net = scorer.net                                         # the reloaded ScaLearn run, learned ω in place
# block, seen = encoder_layers(net)[-1].output, {}
# hook = block.register_forward_hook(lambda mod, inp, out: seen.update(inp=inp, out=out))
# batch = next(iter(make_loader(scorer.feats[:8], scorer.task, scorer.tokenizer, 8)))
# batch = {k: v.to(net.device) for k, v in batch.items() if k != "labels"}
# with torch.no_grad():
#     net(**batch, head="target")
#     hook.remove()
#     inter, x = seen["inp"]                               # FFN hidden state, attention output x (B, T, d)
#     f = block.dense(inter)                               # (B, T, d) FFN output before its residual
#     h = block.LayerNorm(f + x)                           # what every source adapter reads
#     omega = net.scalearn.omega.layer_values()[-1]        # (S, d|1): this layer's ω (no dropout in eval mode)
#     bank, mix, start = block.bank, 0, 0                  # the layer's S adapters, stacked
#     for i, r in enumerate(bank.ranks):                   # adapter i: rows start..start+r of the stack
#         down = F.relu(h @ bank.w_down[:, start:start + r] + bank.b_down[start:start + r])  # (B, T, r)
#         mix = mix + omega[i] * (down @ bank.w_up[start:start + r] + bank.b_up[i])         # ω_i ⊙ A_i(h)
#         start += r
#     by_hand = block.LayerNorm(mix + f + x)
# assert torch.allclose(by_hand, seen["out"], atol=1e-4)
# print("LN(Σ ω_i ⊙ A_i(h) + f + x) = the model's layer ✓")
# ```
# Notebook 03 recomputes the same layer from each adapter's own saved folder instead of the stacked bank.
# </details>
#
# <details><summary>Solution 2</summary>
#
# ```python
# attention.sum(axis=1), analysis.omega_frame(runs["scalearn"]).sum(axis=1)
# ```
# Attention is a softmax: each row sums to 1. ω is unconstrained, and starts at 2/S per source, so its rows start
# summing to 2.
# </details>
#
# <details><summary>Solution 3</summary>
#
# The head was trained on representations produced *with* the learned ω; zeroing ω changes its input
# distribution. The head-only baseline trains its head on the ω = 0 representation.
# </details>
#
# <details><summary>Solution 4</summary>
#
# ```python
# rte = scorer.sources.index("rte")
# for big in (2.0, 4.0):
#     omega = scorer.learned_per_source()
#     omega[rte] = big
#     print(big, round(scorer(omega), 1))
# ```
# A gain is not a skill: ω multiplies what the adapter outputs, and an adapter that learned nothing about its own
# task has nothing useful to amplify. A large ω mostly adds noise to the layer, and the head (trained at the learned
# ω) sees inputs it was not trained on; the contribution figure shows how little RTE's adapter adds where ω left it.
# </details>
#
# **Next:** [05 · Few-shot transfer](05_few_shot.ipynb).
