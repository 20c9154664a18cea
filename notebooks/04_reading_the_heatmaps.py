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
from scalearn_lite import course, viz

env = course.setup(seed=0)  # mode and preset, device, data / cache / run folders, seed

# %% [markdown]
# ## Parameters

# %%
MODE = env.mode
PRESET = course.preset_of(MODE)
# CPU mode: STS-B, the target where ScaLearn gained most over Adapter on validation (docs/results/target-selection-cpu)
TARGET = course.by_mode(MODE, fast="mrpc", cpu="stsb", full="rte")
SOURCES = course.by_mode(MODE, fast=["sst2", "rte"], cpu=["sst2", "qnli", "mrpc", "rte"],
                         full=["mnli", "qnli", "qqp", "sst2", "stsb", "mrpc", "cola"])
SOURCES = course.source_refs(SOURCES, hub=course.HUB_SET_OF_MODE[MODE])
VARIANTS = ["scalearn", "scalearn_uniform", "scalearn_pp", "scalearn_uniform_pp"]
MATRIX_TASKS = course.by_mode(MODE, fast=["sst2", "rte", "mrpc"], cpu=["sst2", "stsb", "rte", "mrpc"],
                              full=["rte", "mrpc", "stsb", "cola"])  # each target's sources: the other tasks
MATRIX_TARGETS = course.by_mode(MODE, fast=["mrpc", "rte"], cpu=["mrpc", "rte", "stsb"],
                                full=["rte", "mrpc", "stsb", "cola"])
MATRIX_VARIANT = "scalearn_uniform_pp"
FUSION_STEPS = course.by_mode(MODE, fast=10, cpu=None)  # None: the preset's full budget
SCORER_ROWS = course.by_mode(MODE, fast=64, cpu=300, full=None)  # validation rows scored by the ω sliders
SEED = 0

# %% [markdown]
# ## ω per layer × source, one panel per variant

# %%
runs = {v: course.run(TARGET, SOURCES, v, PRESET, seed=SEED).path for v in VARIANTS}
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
# **What CPU mode shows** (STS-B, 256 rows × 6 epochs = 48 steps, sources SST-2, QNLI, MRPC, RTE and STS-B's own
# adapter, seed 0; measured with `python notebooks/execute.py 04_reading_the_heatmaps --mode cpu` after notebook 03): with S = 5, white is 0.40. **ScaLearn and ScaLearn++ stay white**:
# their layer means lie within 0.397–0.405, while the spread over units grew from 0.001 at the start to about
# 0.023 in every cell (second figure) — the vector variants move unit by unit, not on average. **The scalar
# variants move**: ScaLearnUniform lowers SST-2 in layers 0–3 (0.32–0.36) and STS-B's own adapter in layer 4 (0.31)
# and raises MRPC, RTE and QNLI in the last layer (0.44–0.45); ScaLearnUniform++ lowers SST-2 most (0.33), then RTE
# (0.37), QNLI and STS-B (0.38), and leaves MRPC at 0.40.

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
# **What CPU mode shows**: ScaLearn's layer means stay on the dashed line (2/S = 0.40) for all six epochs; plot a
# scalar variant (`viz.omega_over_training(runs["scalearn_uniform"])`) to see lines leave it.

# %% [markdown]
# ## What each source adds
#
# ω is a gain; what reaches the layer is $\omega_i \odot A_i(h)$, and the adapters' outputs differ in size. Per
# layer and source, the mean over validation tokens (up to 200 rows) of
# $\lVert \omega_i \odot A_i(h) \rVert / \lVert f + x \rVert$: the share each source adds to the layer's output
# (0 = nothing), one colour scale for the four variants.

# %%
viz.variant_contributions({v: viz.run_contributions(path) for v, path in runs.items()});

# %% [markdown]
# **What CPU mode shows**: the four variants draw nearly the same picture, because their ω hardly differ next to
# how much the adapters' outputs differ. STS-B's own adapter adds most in layers 0–3 (0.09–0.21 of the layer's
# output), QNLI in layers 2–3 (up to 0.20–0.24), MRPC up to 0.08, SST-2 up to 0.07, RTE 0.02 or less; in the last
# two layers no source adds more than 0.05.

# %% [markdown]
# ## AdapterFusion attention next to ω
#
# `transfer()` saves AdapterFusion's layers in its run folder (`fusion/`) and `load_run` rebuilds the model from
# it, so notebook 03's AdapterFusion run could be read back. This notebook trains its own with `course.train_fusion`
# (same target and sources, `FUSION_STEPS` optimiser steps: a short run in fast mode, the preset's budget
# otherwise) and keeps it in memory, so that it runs without notebook 03. `viz.fusion_attention_frame` runs it with
# `output_adapter_fusion_attentions=True` and averages the attention over every non-padding token.

# %%
fusion = course.train_fusion(TARGET, SOURCES, PRESET, seed=SEED, max_steps=FUSION_STEPS)
attention = viz.fusion_attention_frame(fusion.net, course.batches(fusion, "validation"))
viz.compare_fusion_scalearn(attention, viz.omega_frame(runs["scalearn"]));

# %% [markdown]
# **What CPU mode shows**: AdapterFusion, trained on the same rows, commits where ScaLearn's means do not: its
# attention piles onto QNLI in layers 1–3 (0.87, 0.43, 0.67), onto STS-B's own adapter in layer 0 (0.61) and splits
# between SST-2 and RTE in layer 4 (0.41, 0.45), while ScaLearn's panel stays white.

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
batch = next(iter(course.batches(fusion, "validation", batch_size=4)))
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
matrix_runs = {t: course.run(t, [s for s in MATRIX_TASKS if s != t], MATRIX_VARIANT, PRESET, seed=SEED).path
               for t in MATRIX_TARGETS}
viz.target_source_matrix(matrix_runs, columns=MATRIX_TASKS);

# %% [markdown]
# **What CPU mode shows** (each target against the other three of SST-2, STS-B, RTE, MRPC plus its own adapter, so
# 2/S = 0.50): RTE gives its own adapter the most (0.58, the others 0.41–0.45); MRPC raises RTE (0.54) and lowers
# its own adapter most (0.43); STS-B raises MRPC (0.56) above its own (0.51).

# %% [markdown]
# ## Explore: choose target, variant and layer
#
# The controls need a live kernel (Jupyter or Colab). On GitHub or in a headless run they do not render; the static
# figures above show the same heatmaps.

# %%
browse = {TARGET: dict(runs)}
for t, path in matrix_runs.items():
    browse.setdefault(t, {})[MATRIX_VARIANT] = path
viz.run_browser(browse)

# %% [markdown]
# ## Set ω by hand
#
# Reload the ScaLearn run and overwrite ω with one value per source (the same in every layer and unit). The table is
# the static version: the learned ω, the uniform 1/S, all zeros, and each source alone (one-hot, which is exactly
# that single adapter). The sliders below re-score the validation rows whenever one is released.

# %%
scorer = course.OmegaScorer(runs["scalearn"], max_rows=SCORER_ROWS)
scorer.table().round(1)

# %% [markdown]
# **What CPU mode shows** (Pearson on 300 validation rows, the same trained head): the learned ω 55.2, uniform 1/S
# 40.6, all ω = 0 −1.3; one source alone: MRPC 40.5, STS-B's own 35.9, QNLI 35.1, RTE 4.0, SST-2 0.6. The
# paraphrase and entailment adapters carry about as much as the target's own, sentiment and RTE's (49% accuracy
# on RTE itself) nearly nothing, and the learned mix beats every single one and the uniform mix.

# %%
viz.omega_sliders(scorer, scorer.sources, start=scorer.learned_per_source(), metric=scorer.metric)

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
# attention.sum(axis=1), viz.omega_frame(runs["scalearn"]).sum(axis=1)
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
