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
# # 01 · Source adapters: stage 1
#
# **You will be able to** explain what a bottleneck adapter computes and where it sits in a layer, count its parameters, and train one per source task.
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/scalearn-lite/scalearn_lite/blob/main/notebooks/01_source_adapters.ipynb)
#
# What a bottleneck adapter is, where it sits in a layer, how many parameters it has, and what it buys over a frozen encoder with only a head.
#
# **Run time**: measured per notebook and mode on 2 CPU cores in the
# [notebooks README](https://github.com/scalearn-lite/scalearn_lite/blob/main/notebooks/README.md#run-times).
# Stage-1 adapters are cached in `data_cache/` and finished runs in `runs/notebooks/`, so a second run is quicker.

# %% [markdown]
# ## A bottleneck adapter
#
# An adapter is a two-layer MLP with a narrow middle: it projects the hidden state $h \in \mathbb{R}^d$ down to
# $r = d/16$ units, applies a ReLU, and projects back up:
#
# $$
# A(h) = W^{\text{up}}\,\mathrm{ReLU}\big(W^{\text{down}} h + b^{\text{down}}\big) + b^{\text{up}},
# \qquad W^{\text{down}} \in \mathbb{R}^{r \times d},\; W^{\text{up}} \in \mathbb{R}^{d \times r}.
# $$
#
# Per layer that is $2dr + r + d$ parameters: for the embedded MiniLM ($d = 384$, $r = 24$) 18,840 per layer, for
# roberta-base ($d = 768$, $r = 48$) 74,544 per layer — 894,528 over its 12 layers, about 0.7% of the model.
#
# ## Where it sits (AdapterHub `seq_bn`, the Pfeiffer adapter)
#
# One adapter per layer, **after the feed-forward block only**, inside the layer's last residual connection:
#
# ```
#  x ──► FFN ──► f ──┬──► h = LN(f + x) ──► A(h) ──┐
#  │  (attention     │                              ▼
#  │   output)       └── f + x (residual) ──────►  (+) ──► LN ──► out
#  └─────────────────────┘
# ```
#
# $$ h = \mathrm{LN}(f + x), \qquad \mathrm{out} = \mathrm{LN}\big(A(h) + f + x\big). $$
#
# The same LayerNorm (the layer's own, frozen) is used twice. Stage 1 trains $A$ and a task head on each source task
# with everything else frozen (paper: lr $3 \cdot 10^{-4}$, batch 32, up to 30 epochs, early stopping on validation
# loss with patience 5). ScaLearn (stage 2) later replaces $A(h)$ by $\sum_i \omega_i \odot A_i(h)$.

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
TARGET = notebook.by_mode(MODE, fast="mrpc", cpu="mrpc", full="rte")
SOURCES = notebook.by_mode(MODE, fast=["sst2", "rte"], cpu=["sst2", "stsb", "rte"],
                           full=["mnli", "qnli", "qqp", "sst2", "stsb", "mrpc", "cola"])
USE_HUB_ADAPTERS = MODE == "full"  # full mode: load AdapterHub's roberta-base adapters instead of training
SOURCES = notebook.source_refs(SOURCES, hub=notebook.HUB_SET_OF_MODE[MODE])  # full: the "pf" set
SEED = 0

# %% [markdown]
# ## Train the source adapters
#
# Cached adapters are reused (`cached` column). Scores are on the official dev split, which serves as the test set;
# the official train split is divided 90/10 into train and validation (seed 42). The sources train on the source
# budget (CPU mode: 4,000 rows × 3 epochs), the target's own adapter (last row) on the target rows only (CPU mode:
# 256): it is the adapter a transfer loads, and the "Adapter" row below.

# %%
sources_table = notebook.train_sources(SOURCES, PRESET, target=TARGET)
sources_table

# %% [markdown]
# ## What does an adapter buy over a frozen encoder?
#
# The cheapest baseline keeps the encoder frozen and trains **only a head** (ScaLearn with $\omega = 0$). The
# "Adapter" row is the target's own stage-1 adapter (adapter + head trained on the target). The gap between the two
# is what task-specific adapter weights add.

# %%
baselines = notebook.run_many(TARGET, SOURCES, ["head_only", "adapter"], PRESET, seeds=[SEED])
notebook.summary(baselines)[["test (mean ± std)", "transfer params"]]

# %% [markdown]
# **What CPU mode shows** (MRPC, 256 target rows, seed 0; measured with
# `python notebooks/execute.py 01_source_adapters --mode cpu`): both rows score 68.4% test accuracy, the share of
# MRPC's majority class: on 256 rows neither the head nor the target's own adapter learns MRPC. The sources above
# were trained on up to 4,000 rows each; MRPC's own zoo adapter, trained the same way on its 3,301 rows
# (`notebook.train_sources(["mrpc"], PRESET)`), reaches 75.5%. Notebook 03 asks how much of that gap other tasks'
# adapters can close.

# %% [markdown]
# ## Open the hood
#
# Load the target's adapter into a fresh base model with plain `adapters`, catch the inputs of layer 0's output
# block with a forward hook, and recompute $\mathrm{LN}(A(\mathrm{LN}(f + x)) + f + x)$ by hand. Then count the
# adapter's parameters against $L (2dr + r + d)$.

# %%
import torch
from scalearn_lite.config import get_preset
from scalearn_lite.models import encoder_layers, load_base

net, tok = load_base(get_preset(PRESET).model, get_preset(PRESET).num_layers)
net.load_adapter(sources_table.loc[TARGET, "adapter"], load_as="own", with_head=False, use_safetensors=True)
net.set_active_adapters("own")
net.eval()
block, seen = encoder_layers(net)[0].output, {}
hook = block.register_forward_hook(lambda mod, inp, out: seen.update(inp=inp, out=out))
with torch.no_grad():
    net.base_model(**tok(["A cat sat on the mat."], ["The mat had a cat on it."], return_tensors="pt"))
hook.remove()

# %%
inter, x = seen["inp"]  # FFN hidden (1, T, 4d) and attention output x (1, T, d)
a = block.adapters["own"]
with torch.no_grad():
    f = block.dense(inter)  # FFN output before its residual
    h = block.LayerNorm(f + x)  # the adapter's input
    A = a.adapter_up(a.adapter_down(h)) * a.scaling  # W_up ReLU(W_down h + b_down) + b_up
    by_hand = block.LayerNorm(A + f + x)
assert torch.allclose(by_hand, seen["out"], atol=1e-5)

L, d = net.config.num_hidden_layers, net.config.hidden_size
r = a.adapter_up.in_features
n = sum(p.numel() for name, p in net.named_parameters() if ".adapters.own." in name)
assert n == L * (2 * d * r + r + d)
print(f"layer output recomputed by hand ✓   adapter: {L} × (2·{d}·{r} + {r} + {d}) = {n:,} parameters ✓")

# %% [markdown]
# ## Optional (full mode, online): AdapterHub's published adapters
#
# AdapterHub publishes roberta-base seq_bn adapters with heads for the GLUE and SuperGLUE tasks, the "pf" set
# (`AdapterHub/roberta-base-pf-<task>`, MNLI among them; the table is `scalearn_lite/hub.py`), the same architecture
# as ScaLearn's sources. In full mode the notebooks pass these hub ids as sources and skip stage 1 for them. This
# cell loads the target's and prints its configuration (it needs the internet, or the local mirror the tests use;
# it is skipped in the other modes).

# %%
if USE_HUB_ADAPTERS:
    from scalearn_lite.sources import load_adapter_into

    hub_model, _ = load_base(get_preset(PRESET).model)  # roberta-base
    ref = notebook.source_refs([TARGET], hub=notebook.HUB_SET_OF_MODE[MODE])[0]  # e.g. AdapterHub/roberta-base-pf-rte
    load_adapter_into(hub_model, ref, "hub")  # downloaded once; the same seq_bn checks as a local folder
    print(ref, hub_model.adapters_config.get("hub"))
else:
    print("skipped: AdapterHub adapters are for roberta-base (full mode, online)")

# %% [markdown]
# ## Exercises
#
# 1. How many parameters does one Pfeiffer adapter have on roberta-base ($L = 12$, $d = 768$, $r = 48$)?
# 2. Train a SuperGLUE source too, e.g. CB, and look at its row in the table.
# 3. Why is the target's own adapter not enough on small targets such as RTE, and what could other sources add?
#
# <details><summary>Solution 1</summary>
#
# $12 \cdot (2 \cdot 768 \cdot 48 + 48 + 768) = 12 \cdot 74{,}544 = 894{,}528$.
# </details>
#
# <details><summary>Solution 2</summary>
#
# ```python
# notebook.train_sources(["cb"], PRESET)
# ```
# </details>
#
# <details><summary>Solution 3</summary>
#
# With a few thousand examples (or fewer) the adapter overfits or learns little; related sources such as MNLI/QNLI
# for RTE or STS-B/QQP for MRPC were trained on much more data. Stage 2 decides how much of each to use.
# </details>
#
# **Next:** [02 · Why scaling?](02_why_scaling.ipynb) — the experiment that motivates learning ω.
