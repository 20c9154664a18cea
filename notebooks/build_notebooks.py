"""Build notebooks/00..05 as clean nbformat JSON (no outputs): `python build_notebooks.py [repo_root]`."""
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

REPO = "scalearn-lite/scalearn_lite"  # GitHub owner/name used by the Colab badges and the Colab install line
ROOT = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1]

# Measured wall-clock times on 2 CPU cores (None: not measured), both modes with
# `python notebooks/execute.py NAME --mode fast|cpu`, the six in order 00 -> 05 from an empty cache and runs folder,
# quiet machine; each notebook reuses what the earlier ones cached. Fast mode: git 833c8ca
# (tiny preset). CPU mode: git 3fb39f1 (cpu preset: 500 rows x 2 epochs in both stages, bf16 autocast on the AMX CPU).
TIMES = {
    "00_quickstart": {"fast": "42 s", "cpu": "2.5 min from an empty cache"},
    "01_source_adapters": {"fast": "17 s", "cpu": "33 s"},
    "02_why_scaling": {"fast": "27 s", "cpu": "11 min"},
    "03_scalearn_transfer": {"fast": "47 s", "cpu": "8.5 min"},
    "04_reading_the_heatmaps": {"fast": "22 s", "cpu": "2 min (03's seed-0 runs reused)"},
    "05_few_shot": {"fast": "24 s", "cpu": "4 min"},
}


# The course's target and sources per mode, shared by every notebook's parameters cell (so that notebooks reuse
# each other's cached runs).
TARGET_LINE = 'TARGET = course.by_mode(MODE, fast="mrpc", cpu="mrpc", full="rte")\n'
TARGET_AND_SOURCES = TARGET_LINE + (
    'SOURCES = course.by_mode(MODE, fast=["sst2", "rte"], cpu=["sst2", "stsb", "rte"],\n'
    '                         full=["sst2", "stsb", "mrpc", "cola", "qnli", "qqp"])\n')


def md(text):
    return new_markdown_cell(text.strip("\n"))


def code(text):
    return new_code_cell(text.strip("\n"))


def header(name, title, subtitle):
    t = TIMES[name]
    fast = t["fast"] or "not yet measured"
    cpu = t["cpu"] or "not yet measured"
    after = "" if name.startswith("00") else " Times assume notebook 00 has already trained the shared source adapters."
    badge = (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
             f"(https://colab.research.google.com/github/{REPO}/blob/main/notebooks/{name}.ipynb)")
    return md(f"""
# {title}

{badge}

{subtitle}

**Run time** (2 CPU cores) — fast mode (CI): {fast} · CPU mode: {cpu} · full mode (GPU, roberta-base): not yet
measured.{after} Stage-1 adapters are cached in `data_cache/` and finished runs in `runs/notebooks/`, so a second
run is quicker.
""")


SETUP = f"""
# Setup: in Colab, install scalearn_lite from its repository (Colab's own torch satisfies torch>=2.1 and is kept).
import subprocess, sys
if "google.colab" in sys.modules:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "scalearn_lite @ git+https://github.com/{REPO}.git"], check=True)

%matplotlib inline
from scalearn_lite import course, viz

env = course.setup(seed=0)  # prints mode, device, data folder, cache and run folders
"""

MODES_MD = """
**Modes.** `fast` (set automatically under CI, or with `SCALEARN_FAST=1`): the `tiny` preset — the embedded
encoder cut to 2 layers, a few hundred training rows, a few epochs; its numbers are a smoke test, not results.
`cpu` (a laptop, the default without a GPU): the `cpu` preset — the 6-layer embedded all-MiniLM-L6-v2 on
subsampled training sets. `full` (a GPU, e.g. Colab): the `paper` preset — roberta-base, full data from the
Hugging Face hub, the paper's protocol. The presets are defined in `scalearn_lite/config.py`; set `MODE` in the
parameters cell (or `SCALEARN_MODE`) to force a mode.
"""


def nb(name, cells):
    book = new_notebook(cells=cells)
    for i, cell in enumerate(book.cells):  # stable ids: a rebuild changes only what was edited
        cell["id"] = f"{name[:2]}-{i:02d}"
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    book.metadata["language_info"] = {"name": "python"}
    book.metadata["colab"] = {"provenance": []}
    nbformat.validate(book)
    path = ROOT / "notebooks" / f"{name}.ipynb"
    nbformat.write(book, path)
    print("wrote", path)


# ================================================================================================ 00
nb("00_quickstart", [
    header("00_quickstart", "00 · Quickstart: learn to scale frozen adapters",
           "ScaLearn (Frohmann et al., *Findings of ACL 2024*) in three steps: train one small adapter per "
           "**source** task, freeze them all, and learn only how much of each to use on a **target** task. "
           "Then read what it learned as a heatmap."),
    md(r"""
## The idea in one formula

A transformer layer $l$ computes the attention block output $x$ and the feed-forward output $f$ (before its
residual), and ends with its own LayerNorm $\mathrm{LN}$. A *bottleneck adapter* $A_i$ trained on source task $i$
reads $h = \mathrm{LN}(f + x)$ and adds a small correction. ScaLearn keeps $S$ such adapters **frozen** and mixes
their outputs with learned scaling coefficients $\omega$:

$$
h = \mathrm{LN}(f + x), \qquad
\mathrm{out}_l = \mathrm{LN}\Big( \sum_{i=1}^{S} \omega_i^{l} \odot A_i^{l}(h) \;+\; f \;+\; x \Big),
\qquad A_i(h) = W^{\text{up}}_i\,\mathrm{ReLU}(W^{\text{down}}_i h + b^{\text{down}}_i) + b^{\text{up}}_i .
$$

* Only $\omega$ (and a new classification head) is trained; the encoder and every adapter stay frozen.
* $\omega$ is **unconstrained**: no softmax, no sum-to-one. $\omega_i = 0$ switches adapter $i$ off, $\omega_i = 1$
  uses it as trained, $\omega_i > 1$ amplifies it and $\omega_i < 0$ flips it.
* With $\omega$ one-hot on source $k$ the layer is exactly the single adapter $k$.
* $\omega$ starts at $2/S$ (plus noise of std 0.001) and a dropout of 0.3 acts on $\omega$ itself (none for
  ScaLearnUniform++).

| variant | $\omega$ per layer | shared across layers | transfer parameters ($L$ layers, width $d$, $S$ sources) |
|---|---|---|---|
| ScaLearn | $S \times d$ | no | $L \cdot S \cdot d$ |
| ScaLearnUniform | $S \times 1$ | no | $L \cdot S$ |
| ScaLearn++ | $S \times d$ | yes | $S \cdot d$ |
| ScaLearnUniform++ | $S \times 1$ | yes | $S$ |
"""),
    md(MODES_MD),
    code(SETUP),
    md("""
## Parameters

The only cell to edit. The target's own stage-1 adapter is always added as the **last** source (the paper follows
AdapterFusion's protocol), so `SOURCES` lists only the *other* tasks.
"""),
    code("""
MODE = env.mode  # "fast", "cpu" or "full"
PRESET = course.PRESET_OF_MODE[MODE]  # tiny / cpu / paper (see scalearn_lite/config.py)
""" + TARGET_AND_SOURCES + """USE_HUB_ADAPTERS = MODE == "full"  # full mode: AdapterHub's published roberta-base adapters skip stage 1
SOURCES = course.source_refs(SOURCES, hub=USE_HUB_ADAPTERS)
SEED = 0
"""),
    md("""
## Step 1 — one adapter per source task

Each source adapter is trained on its own task with the encoder frozen (stage 1). They are cached in
`data_cache/adapters/`, so later notebooks reuse them. The target's own adapter is trained here too.
"""),
    code("""
sources_table = course.train_sources(SOURCES + [TARGET], PRESET)
sources_table[[c for c in ("metric", "test", "validation", "steps", "seconds") if c in sources_table]]
"""),
    md("""
## Step 2 — transfer: learn ω on the target

`course.run` calls `scalearn_lite.transfer.transfer(...)` and writes a run folder (`metrics.json`, `omega.json`,
`omega.pt`, `history.csv`, the head). A finished folder is reused, so re-running the cell is instant.
"""),
    code("""
res = course.run(TARGET, SOURCES, "scalearn", PRESET, seed=SEED)
m = res.metrics
print(f"ScaLearn → {m['target']}: test {m['metric']} {100 * m['test_metric']:.1f} "
      f"(validation {100 * m['validation_metric']:.1f}); sources {m['sources']}")
print(f"transfer parameters: {m['transfer_params']:,}   run folder: {res.path}")
"""),
    md("""
## Step 3 — read ω

One row per layer, one column per source adapter (the target's own last); each cell is ω averaged over the $d$
hidden units. White is 0 (adapter off), red is positive, blue negative. With the short budgets of the fast and
CPU modes (a few dozen optimiser steps) the *mean* ω stays close to its start value $2/S$; the individual units
move more (notebook 04 plots their spread), and the paper's 30 epochs move the means too.
"""),
    code("""
frame = viz.omega_frame(res)
viz.omega_heatmap(frame, title=f"ScaLearn ω → {TARGET}");
"""),
    md(r"""
## Open the hood

The heatmap is built from `omega.json`. Recompute it from the raw parameter in `omega.pt` with plain torch: ω of
ScaLearn is one tensor of shape $(L, S, d)$, the heatmap is its mean over the last axis, and its size is the
number of transfer parameters $L \cdot S \cdot d$.
"""),
    code("""
import torch

saved = torch.load(res.path / "omega.pt", weights_only=True)
omega = saved["omega"]  # (L, S, d): layers × sources × hidden units
L, S, d = omega.shape
assert saved["sources"] == list(frame.columns)
assert torch.allclose(omega.mean(dim=-1), torch.tensor(frame.values, dtype=omega.dtype), atol=1e-6)
assert omega.numel() == L * S * d == m["transfer_params"]
print(f"ω: {L} layers × {S} sources × {d} units = {omega.numel():,} parameters; heatmap = mean over units ✓")
"""),
    md(r"""
## Exercises

1. Run the ScaLearnUniform++ variant (`"scalearn_uniform_pp"`) on the same target. How many numbers does it learn,
   and why are all rows of its heatmap identical?
2. How many transfer parameters does ScaLearn need for roberta-base ($L = 12$, $d = 768$) with $S = 8$ sources?
   Compare with AdapterFusion's $3d^2 + 2d$ per layer.
3. Which source gets the largest ω on average? Is it the target's own adapter?

<details><summary>Solution 1</summary>

```python
res_u = course.run(TARGET, SOURCES, "scalearn_uniform_pp", PRESET, seed=SEED)
print(res_u.metrics["transfer_params"])        # S: one scalar per source, shared by every layer
viz.omega_heatmap(viz.omega_frame(res_u));     # "++": one ω for all layers, so every row is the same
```
</details>

<details><summary>Solution 2</summary>

$L \cdot S \cdot d = 12 \cdot 8 \cdot 768 = 73{,}728$. AdapterFusion: $12 \cdot (3 \cdot 768^2 + 2 \cdot 768) =
21{,}252{,}096$, so ScaLearn needs 0.347% of it. The package counts them from instantiated modules:
`scalearn-lite params --hidden-size 768 --num-layers 12 --sources 8`.
</details>

<details><summary>Solution 3</summary>

```python
frame.mean().sort_values(ascending=False)
```
</details>

**Next:** [01 · Source adapters](01_source_adapters.ipynb) — what an adapter is and where it sits.
"""),
])

# ================================================================================================ 01
nb("01_source_adapters", [
    header("01_source_adapters", "01 · Source adapters: stage 1",
           "What a bottleneck adapter is, where it sits in a layer, how many parameters it has, and what it buys "
           "over a frozen encoder with only a head."),
    md(r"""
## A bottleneck adapter

An adapter is a two-layer MLP with a narrow middle: it projects the hidden state $h \in \mathbb{R}^d$ down to
$r = d/16$ units, applies a ReLU, and projects back up:

$$
A(h) = W^{\text{up}}\,\mathrm{ReLU}\big(W^{\text{down}} h + b^{\text{down}}\big) + b^{\text{up}},
\qquad W^{\text{down}} \in \mathbb{R}^{r \times d},\; W^{\text{up}} \in \mathbb{R}^{d \times r}.
$$

Per layer that is $2dr + r + d$ parameters: for the embedded MiniLM ($d = 384$, $r = 24$) 18,840 per layer, for
roberta-base ($d = 768$, $r = 48$) 74,544 per layer — 894,528 over its 12 layers, about 0.7% of the model.

## Where it sits (AdapterHub `seq_bn`, the Pfeiffer adapter)

One adapter per layer, **after the feed-forward block only**, inside the layer's last residual connection:

```
 x ──► FFN ──► f ──┬──► h = LN(f + x) ──► A(h) ──┐
 │  (attention     │                              ▼
 │   output)       └── f + x (residual) ──────►  (+) ──► LN ──► out
 └─────────────────────┘
```

$$ h = \mathrm{LN}(f + x), \qquad \mathrm{out} = \mathrm{LN}\big(A(h) + f + x\big). $$

The same LayerNorm (the layer's own, frozen) is used twice. Stage 1 trains $A$ and a task head on each source task
with everything else frozen (paper: lr $3 \cdot 10^{-4}$, batch 32, up to 30 epochs, early stopping on validation
loss with patience 5). ScaLearn (stage 2) later replaces $A(h)$ by $\sum_i \omega_i \odot A_i(h)$.
"""),
    md(MODES_MD),
    code(SETUP),
    md("## Parameters"),
    code("""
MODE = env.mode
PRESET = course.PRESET_OF_MODE[MODE]
""" + TARGET_AND_SOURCES + """USE_HUB_ADAPTERS = MODE == "full"  # full mode: load AdapterHub's roberta-base adapters instead of training
SOURCES = course.source_refs(SOURCES, hub=USE_HUB_ADAPTERS)
SEED = 0
"""),
    md("""
## Train the source adapters

Cached adapters are reused (`cached` column). Scores are on the official dev split, which serves as the test set;
the official train split is divided 90/10 into train and validation (seed 42).
"""),
    code("""
sources_table = course.train_sources(SOURCES + [TARGET], PRESET)
sources_table
"""),
    md(r"""
## What does an adapter buy over a frozen encoder?

The cheapest baseline keeps the encoder frozen and trains **only a head** (ScaLearn with $\omega = 0$). The
"Adapter" row is the target's own stage-1 adapter (adapter + head trained on the target). The gap between the two
is what task-specific adapter weights add.
"""),
    code("""
baselines = course.run_many(TARGET, SOURCES, ["head_only", "adapter"], PRESET, seeds=[SEED])
course.summary(baselines)[["test (mean ± std)", "transfer params"]]
"""),
    md(r"""
## Open the hood

Load the target's adapter into a fresh base model with plain `adapters`, catch the inputs of layer 0's output
block with a forward hook, and recompute $\mathrm{LN}(A(\mathrm{LN}(f + x)) + f + x)$ by hand. Then count the
adapter's parameters against $L (2dr + r + d)$.
"""),
    code("""
import torch
from scalearn_lite.config import get_preset
from scalearn_lite.models import encoder_layers, load_base

net, tok = load_base(get_preset(PRESET).model, get_preset(PRESET).num_layers)
net.load_adapter(sources_table.loc[TARGET, "adapter"], load_as="own", with_head=False)
net.set_active_adapters("own")
net.eval()
block, seen = encoder_layers(net)[0].output, {}
hook = block.register_forward_hook(lambda mod, inp, out: seen.update(inp=inp, out=out))
with torch.no_grad():
    net.base_model(**tok(["A cat sat on the mat."], ["The mat had a cat on it."], return_tensors="pt"))
hook.remove()
"""),
    code("""
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
"""),
    md("""
## Optional (full mode, online): AdapterHub's published adapters

AdapterHub publishes roberta-base Pfeiffer adapters for the GLUE tasks, the same architecture as ScaLearn's
sources (`course.HUB_ADAPTERS`). With `USE_HUB_ADAPTERS = True` the notebooks pass these hub ids as sources and
skip stage 1 for them. This cell loads one and prints its configuration (it needs the internet; it is skipped in
the other modes).
"""),
    code("""
if USE_HUB_ADAPTERS:
    from adapters import AutoAdapterModel

    hub_model = AutoAdapterModel.from_pretrained("roberta-base")
    name = hub_model.load_adapter(course.HUB_ADAPTERS["rte"], with_head=False)
    print(name, hub_model.adapters_config.get(name))
else:
    print("skipped: AdapterHub adapters are for roberta-base (full mode, online)")
"""),
    md(r"""
## Exercises

1. How many parameters does one Pfeiffer adapter have on roberta-base ($L = 12$, $d = 768$, $r = 48$)?
2. Train a SuperGLUE source too, e.g. CB, and look at its row in the table.
3. Why is the target's own adapter not enough on small targets such as RTE, and what could other sources add?

<details><summary>Solution 1</summary>

$12 \cdot (2 \cdot 768 \cdot 48 + 48 + 768) = 12 \cdot 74{,}544 = 894{,}528$.
</details>

<details><summary>Solution 2</summary>

```python
course.train_sources(["cb"], PRESET)
```
</details>

<details><summary>Solution 3</summary>

With a few thousand examples (or fewer) the adapter overfits or learns little; related sources such as MNLI/QNLI
for RTE or STS-B/QQP for MRPC were trained on much more data. Stage 2 decides how much of each to use.
</details>

**Next:** [02 · Why scaling?](02_why_scaling.ipynb) — the experiment that motivates learning ω.
"""),
])

# ================================================================================================ 02
nb("02_why_scaling", [
    header("02_why_scaling", "02 · Why scaling? The probing experiment",
           "Before learning ω, the paper asks a simpler question: if we *fix* how much of a frozen adapter "
           "reaches the output, and train only a head, does the amount matter?"),
    md(r"""
## One adapter, a fixed ω

Take one frozen source adapter $A$ and a fixed $\omega \in \{0, 0.1, 0.3, 0.5, 0.7, 0.9, 1\}$, the same in every
layer, and train **only a classification head** on the target:

$$ \mathrm{out}_l = \mathrm{LN}\big(\omega\, A^{l}(h) + f + x\big). $$

$\omega = 0$ is the frozen encoder alone; $\omega = 1$ is the adapter exactly as trained. The paper finds that
the score moves gradually between the two: **partial scaling controls how much of an adapter's knowledge is
used**, so "how much" is worth learning rather than fixing at 0 or 1.

## Two adapters, a grid

With two adapters — the target's own and another source — and a grid over $(\omega_1, \omega_2)$:

$$ \mathrm{out}_l = \mathrm{LN}\big(\omega_1 A_1^{l}(h) + \omega_2 A_2^{l}(h) + f + x\big). $$

If mixing adapters were a weighted average (as AdapterFusion's softmax imposes), only the line
$\omega_1 + \omega_2 = 1$ would be reachable. The paper's finding: **the best pair need not lie on that line** —
the reason ScaLearn leaves ω unconstrained.

**How it is computed here.** The encoder, the adapters and ω are all fixed, so the encoder's output is a fixed
function of ω: `course.ProbeBench` computes the first-token representation once per ω setting (eval mode) and
trains a fresh head (the shape of the adapters classification head) on it, keeping the best validation epoch.
"""),
    md(MODES_MD),
    code(SETUP),
    md("## Parameters"),
    code("""
MODE = env.mode
PRESET = course.PRESET_OF_MODE[MODE]
""" + TARGET_LINE + """OTHER = course.by_mode(MODE, fast="sst2", cpu="stsb", full="qnli")  # the second adapter of the grid
OTHER = course.source_refs([OTHER], hub=MODE == "full")[0]
OMEGAS = course.by_mode(MODE, fast=[0.0, 0.5, 1.0], cpu=[0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0])
GRID = course.by_mode(MODE, fast=[0.0, 0.5, 1.0], cpu=[0.0, 0.3, 0.5, 0.7, 1.0],
                      full=[0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0])
PROBE_ROWS = course.by_mode(MODE, fast=256, cpu=1000, full=None)  # cap on target training rows
HEAD_EPOCHS = course.by_mode(MODE, fast=5, cpu=10, full=20)
"""),
    code("""
bench = course.ProbeBench(TARGET, [OTHER], PRESET, max_train=PROBE_ROWS)
OTHER_NAME, OWN = bench.sources  # the target's own adapter is last
METRIC = bench.task.main_metric
print(f"target {TARGET} ({METRIC}); frozen adapters {bench.sources}; "
      f"{len(bench.feats['train'])} training rows")
"""),
    md("""
## One adapter at a time

Each line scales one adapter (the other is at 0). The point at ω = 0 is the same on both lines: the frozen encoder
with a head.
"""),
    code("""
line = course.sweep_one(bench, OMEGAS, epochs=HEAD_EPOCHS)
viz.probe_line(line, metric=METRIC);
"""),
    code("""
line.pivot(index="omega", columns="source", values="test").mul(100).round(1)
"""),
    md("""
## Two adapters: the grid

Rows: ω₁ on the target's own adapter (growing upward); columns: ω₂ on the other source; each cell is the test
score. The dashed line is ω₁ + ω₂ = 1. The red box is the cell that is best on **validation** — settings are
chosen on validation, and the test score is read only at the chosen point.
"""),
    code("""
grid = course.sweep_two(bench, (OWN, OTHER_NAME), GRID, epochs=HEAD_EPOCHS)
viz.probe_grid(grid, metric=METRIC);
"""),
    code("""
best = grid.loc[grid["validation"].idxmax()]
print(f"best on validation: ω₁ ({OWN}) = {best.omega_1}, ω₂ ({OTHER_NAME}) = {best.omega_2}, "
      f"sum {best.omega_1 + best.omega_2:.1f} → test {METRIC} {100 * best.test:.1f}")
"""),
    md(r"""
In fast mode the tiny 2-layer encoder and 512 rows leave most cells at the majority class; run the CPU mode to see
the structure. Whatever the numbers, note what the grid *can* show that a softmax cannot: cells off the dashed line.

## Open the hood

With every ω at 0 the ScaLearn layer is $\mathrm{LN}(0 + f + x)$, the unmodified layer. Check it: the probe's
features at ω = (0, 0) must equal the first-token output of a fresh base model with no adapters, computed in plain
torch.
"""),
    code("""
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
assert torch.allclose(probe_x[: len(feats)], reference, atol=1e-4)
print("ω = 0 gives the frozen encoder exactly ✓", tuple(reference.shape))
"""),
    md(r"""
## Exercises

1. Add negative values (e.g. −0.5) to `OMEGAS`. Does flipping an adapter ever help?
2. Swap `OTHER` for another source (e.g. `"rte"` or `"sst2"`): does the best cell move?
3. Why can't AdapterFusion reach a cell with $\omega_1 + \omega_2 = 1.5$?

<details><summary>Solution 1</summary>

```python
course.sweep_one(bench, [-0.5, 0.0, 0.5, 1.0], epochs=HEAD_EPOCHS)
```
Usually not on its own, but the learned ScaLearn ω sometimes goes negative for a few units or layers.
</details>

<details><summary>Solution 2</summary>

```python
bench2 = course.ProbeBench(TARGET, ["rte"], PRESET, max_train=PROBE_ROWS)
viz.probe_grid(course.sweep_two(bench2, (bench2.sources[-1], bench2.sources[0]), GRID, epochs=HEAD_EPOCHS));
```
</details>

<details><summary>Solution 3</summary>

Its attention weights come from a softmax over the sources, so they are non-negative and sum to 1 in every token
and layer: its mix is always a point on the simplex. (Its value matrix can rescale afterwards, at the cost of
$d^2$ parameters per layer.)
</details>

**Next:** [03 · ScaLearn transfer](03_scalearn_transfer.ipynb) — learning ω instead of fixing it.
"""),
])

# ================================================================================================ 03
nb("03_scalearn_transfer", [
    header("03_scalearn_transfer", "03 · ScaLearn transfer: four variants against the baselines",
           "Learn ω on a target task with all four ScaLearn variants, compare with the paper's baselines over "
           "several seeds, and plot score against transfer parameters."),
    md(r"""
## What is trained

All $S$ source adapters are frozen; the target's own adapter is the last source. Only ω and a new head are
trained (lr $6 \cdot 10^{-3}$ with linear decay, batch 32; the best validation epoch is kept):

$$ \mathrm{out}_l = \mathrm{LN}\Big(\sum_{i=1}^{S} \omega_i^l \odot A_i^l(h) + f + x\Big),\qquad
\omega^l_i \in \mathbb{R}^{d}\ \text{(ScaLearn)}\ \text{or}\ \mathbb{R}\ \text{(Uniform)},\quad
\omega^l = \omega\ \forall l\ \text{(the ++ variants)}. $$

| method | trains | transfer parameters |
|---|---|---|
| ScaLearn / Uniform / ++ / Uniform++ | ω + head | $LSd$ / $LS$ / $Sd$ / $S$ |
| Adapter | the target's own adapter + head | $L(2dr + r + d)$ |
| AdapterFusion (dynamic) | query, key, value per layer + head | $L(3d^2 + 2d)$ |
| Average (ω = 1/S) | head only | 0 |
| Head only (ω = 0) | head only | 0 |

**Protocol** (paper): train split 90/10 into train/validation (seed 42), the official dev split as test, several
seeds, mean ± std. The efficiency plot puts each method at its transfer-parameter count (the head is excluded,
as in the paper).
"""),
    md(MODES_MD),
    code(SETUP),
    md("## Parameters"),
    code("""
MODE = env.mode
PRESET = course.PRESET_OF_MODE[MODE]
""" + TARGET_AND_SOURCES + """SOURCES = course.source_refs(SOURCES, hub=MODE == "full")
VARIANTS = ["scalearn", "scalearn_uniform", "scalearn_pp", "scalearn_uniform_pp"]
BASELINES = course.by_mode(MODE, fast=["adapter", "head_only", "adapterfusion"],
                           cpu=["adapter", "head_only", "average", "adapterfusion"])
SEEDS = course.by_mode(MODE, fast=[0], cpu=[0, 1, 2])
"""),
    md("""
## Run everything

One run folder per (method, seed) under `runs/notebooks/`; finished folders are reused, so an interrupted notebook
resumes where it stopped.
"""),
    code("""
results = course.run_many(TARGET, SOURCES, VARIANTS + BASELINES, PRESET, seeds=SEEDS)
"""),
    code("""
table = course.summary(results)
floor = course.best_constant(TARGET, PRESET)  # majority class on the same test rows
print(f"best constant prediction on {TARGET}'s test rows: {floor:.1f}" if floor is not None else "regression: no floor")
table[["test (mean ± std)", "seeds", "transfer params"]]
"""),
    md("""
Read every score against the best constant prediction printed above: a method at that value has learned to
answer the majority class and nothing else.
In fast mode (2 layers, 512 rows, 2 epochs) most methods predict the majority class, so the table is a smoke test.
In the paper (roberta-base) the gains of ScaLearn concentrate on small targets such as RTE and MRPC.

## Efficiency

Each point is one method: mean test score (± std over seeds) against the number of transfer parameters on a log
axis. Methods with no transfer parameters sit at the left edge.
"""),
    code("""
viz.efficiency_plot(results);
"""),
    md(r"""
## Open the hood

Reload the saved ScaLearn run (`load_run` rebuilds the base model, the frozen source bank and ω from
`omega.pt`) and recompute its test accuracy with a plain torch loop: save → reload must reproduce the score in
`metrics.json` exactly.
"""),
    code("""
import torch
from scalearn_lite.config import get_preset
from scalearn_lite.encoding import encode, make_loader
from scalearn_lite.sources import load_task_data
from scalearn_lite.transfer import load_run

row = results.query("method == 'scalearn'").iloc[0]
net, tok, task, cfg = load_run(row.path)
test_rows = load_task_data(task, get_preset(PRESET), seed=cfg["seed"])["test"]
loader = make_loader(encode(task, test_rows, tok, get_preset(PRESET).max_length), task, tok, batch_size=64)
"""),
    code("""
correct = 0
with torch.no_grad():
    for batch in loader:
        labels = batch.pop("labels")
        logits = net(**batch, head="target").logits  # (B, C)
        correct += (logits.argmax(-1) == labels).sum().item()
accuracy = correct / len(test_rows)
assert row.metric == "accuracy", "this check recomputes accuracy (MRPC, RTE, ...)"
assert abs(accuracy - row.test_metric) < 1e-9
print(f"reloaded ScaLearn: test accuracy {100 * accuracy:.2f} = metrics.json {100 * row.test_metric:.2f} ✓")
"""),
    md(r"""
## Exercises

1. Add `"adaptersoup"` (weight-space average of the most similar sources) to `BASELINES`. Where does it land?
2. What fraction of AdapterFusion's transfer parameters does each ScaLearn variant use here?
3. Add seeds. Which methods have the largest spread, and why might a method with 8 parameters be stable?

<details><summary>Solution 1</summary>

```python
soup = course.run_many(TARGET, SOURCES, ["adaptersoup"], PRESET, seeds=SEEDS)
course.summary(soup)
```
</details>

<details><summary>Solution 2</summary>

```python
params = table["transfer params"]
(100 * params / params["AdapterFusion"]).round(4)
```
</details>

<details><summary>Solution 3</summary>

```python
more = course.run_many(TARGET, SOURCES, VARIANTS + BASELINES, PRESET, seeds=[0, 1, 2])
course.summary(more)[["mean", "std"]]
```
Fewer trainable numbers leave less room to fit the noise of one seed's data order and head initialisation.
</details>

**Next:** [04 · Reading the heatmaps](04_reading_the_heatmaps.ipynb).
"""),
])

# ================================================================================================ 04
nb("04_reading_the_heatmaps", [
    header("04_reading_the_heatmaps", "04 · Reading the heatmaps",
           "ω per layer × source for each variant, how ω moves during training, AdapterFusion's attention next "
           "to it, a target × source matrix, and controls to set ω by hand."),
    md(r"""
## What the pictures mean

* **ω per layer × source.** Cell $(l, i)$ is $\omega_i^l$ averaged over the $d$ hidden units. ω is
  unconstrained, so the palette is diverging and centred at 0: white = adapter $i$ switched off in layer $l$.
  Rows of the "++" variants are identical by construction (one ω for every layer).
* **Spread over units.** For the vector variants each cell hides $d$ values; their standard deviation shows how
  selectively a source is used unit by unit.
* **AdapterFusion attention.** Fusion mixes the same adapter outputs with a softmax over sources per token:
  $\alpha^l = \mathrm{softmax}_i\big(q(h)^\top k(A_i^l(h))\big)$, averaged here over every token of the validation
  set. Attention rows sum to 1; ω rows need not.
* **Target × source.** With ScaLearnUniform++ each target's ω is $S$ numbers: one row per target, one column per
  source, the target's own adapter outlined.
"""),
    md(MODES_MD),
    code(SETUP),
    md("## Parameters"),
    code("""
MODE = env.mode
PRESET = course.PRESET_OF_MODE[MODE]
""" + TARGET_AND_SOURCES + """SOURCES = course.source_refs(SOURCES, hub=MODE == "full")
VARIANTS = ["scalearn", "scalearn_uniform", "scalearn_pp", "scalearn_uniform_pp"]
MATRIX_TASKS = course.by_mode(MODE, fast=["sst2", "rte", "mrpc"], cpu=["sst2", "stsb", "rte", "mrpc"],
                              full=["rte", "mrpc", "stsb", "cola"])  # each target's sources: the other tasks
MATRIX_TARGETS = course.by_mode(MODE, fast=["mrpc", "rte"], cpu=["mrpc", "rte", "stsb"],
                                full=["rte", "mrpc", "stsb", "cola"])
MATRIX_VARIANT = "scalearn_uniform_pp"
FUSION_STEPS = course.by_mode(MODE, fast=10, cpu=None)  # None: the preset's full budget
SCORER_ROWS = course.by_mode(MODE, fast=64, cpu=300, full=None)  # validation rows scored by the ω sliders
SEED = 0
"""),
    md("## ω per layer × source, one panel per variant"),
    code("""
runs = {v: course.run(TARGET, SOURCES, v, PRESET, seed=SEED).path for v in VARIANTS}
viz.variant_heatmaps(runs);
"""),
    code("""
viz.omega_heatmap(viz.omega_spread(runs["scalearn"]), title="ScaLearn: std of ω over hidden units");
"""),
    md("""
## ω during training

`history.csv` records ω after every epoch (mean over hidden units). The line is the mean over layers, the band
spans the layers' minimum to maximum; the dashed line is the start value 2/S.
"""),
    code("""
viz.omega_over_training(runs["scalearn"]);
"""),
    md("""
## AdapterFusion attention next to ω

`transfer()` does not save fusion weights, so `course.train_fusion` trains AdapterFusion on the same target and
sources and keeps the model in memory; `viz.fusion_attention_frame` runs it with
`output_adapter_fusion_attentions=True` and averages the attention over every non-padding token.
"""),
    code("""
fusion = course.train_fusion(TARGET, SOURCES, PRESET, seed=SEED, max_steps=FUSION_STEPS)
attention = viz.fusion_attention_frame(fusion.net, course.batches(fusion, "validation"))
viz.compare_fusion_scalearn(attention, viz.omega_frame(runs["scalearn"]));
"""),
    md(r"""
## Open the hood

Recompute layer 0's fusion attention by hand: catch the inputs of the fusion module (the query $h$ and the stacked
adapter outputs), apply its query and key projections, and take a softmax over the sources.
"""),
    code("""
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
"""),
    code("""
query, key = seen["inp"][0], seen["inp"][1]  # (B, T, d) and (B, T, S, d): the S adapters' outputs
with torch.no_grad():
    scores = (module.query(query).unsqueeze(2) * module.key(key)).sum(-1)  # (B, T, S)
    by_hand = torch.softmax(scores / module.T, dim=-1)
library = out["adapter_fusion_attentions"][name][0]["output_adapter"]  # (B, T, S)
assert np.allclose(by_hand.numpy(), library, atol=1e-5)
print("fusion attention = softmax over sources of q(h)·k(A_i(h)) ✓", library.shape)
"""),
    md("## Target × source matrix (ScaLearnUniform++)"),
    code("""
matrix_runs = {t: course.run(t, [s for s in MATRIX_TASKS if s != t], MATRIX_VARIANT, PRESET, seed=SEED).path
               for t in MATRIX_TARGETS}
viz.target_source_matrix(matrix_runs, columns=MATRIX_TASKS);
"""),
    md("""
## Explore: choose target, variant and layer

The controls need a live kernel (Jupyter or Colab). On GitHub or in a headless run they do not render; the static
figures above show the same heatmaps.
"""),
    code("""
browse = {TARGET: dict(runs)}
for t, path in matrix_runs.items():
    browse.setdefault(t, {})[MATRIX_VARIANT] = path
viz.run_browser(browse)
"""),
    md(r"""
## Set ω by hand

Reload the ScaLearn run and overwrite ω with one value per source (the same in every layer and unit). The table is
the static version: the learned ω, the uniform 1/S, all zeros, and each source alone (one-hot, which is exactly
that single adapter). The sliders below re-score the validation rows whenever one is released.
"""),
    code("""
scorer = course.OmegaScorer(runs["scalearn"], max_rows=SCORER_ROWS)
scorer.table().round(1)
"""),
    code("""
viz.omega_sliders(scorer, scorer.sources, start=scorer.learned_per_source(), metric=scorer.metric)
"""),
    md(r"""
## Exercises

1. In which layer does the target's own adapter get its largest ω?
2. Compare one row of fusion attention with the same row of ω: which one can exceed 1 in total, and why?
3. With the sliders, set every ω to 0. Why is the score not the head-only baseline's score?

<details><summary>Solution 1</summary>

```python
frame = viz.omega_frame(runs["scalearn"])
frame[frame.columns[-1]].idxmax()
```
</details>

<details><summary>Solution 2</summary>

```python
attention.sum(axis=1), viz.omega_frame(runs["scalearn"]).sum(axis=1)
```
Attention is a softmax: each row sums to 1. ω is unconstrained, and starts at 2/S per source, so its rows start
summing to 2.
</details>

<details><summary>Solution 3</summary>

The head was trained on representations produced *with* the learned ω; zeroing ω changes its input
distribution. The head-only baseline trains its head on the ω = 0 representation.
</details>

**Next:** [05 · Few-shot transfer](05_few_shot.ipynb).
"""),
])

# ================================================================================================ 05
nb("05_few_shot", [
    header("05_few_shot", "05 · Few-shot transfer",
           "With only k target examples, the target's own adapter has little to learn from; ScaLearn can lean on "
           "the other sources. Compare ScaLearn, a single Adapter and AdapterFusion for k ∈ {4, 16, 32, 100}."),
    md(r"""
## Protocol

For each $k$ and seed, $k$ target training examples are drawn, balanced over classes (with $C$ classes, $\lfloor
k/C \rfloor$ each and the remainder to random classes); the validation set is a $k$-shot sample as well.
The **target's own source adapter is also trained on those $k$ examples** (so it is weak); the other sources keep
their full-data adapters. Training stops at 1000 steps at most.

* ScaLearn trains $\omega$ + head ($L \cdot S \cdot d$ transfer parameters);
* Adapter trains the own adapter + head on the $k$ examples;
* AdapterFusion trains its fusion layers ($L(3d^2 + 2d)$) + head.

Different seeds draw different $k$-shot samples, so the spread over seeds is large for small $k$: report
mean ± std.
"""),
    md(MODES_MD),
    code(SETUP),
    md("## Parameters"),
    code("""
MODE = env.mode
PRESET = course.PRESET_OF_MODE[MODE]
""" + TARGET_AND_SOURCES + """SOURCES = course.source_refs(SOURCES, hub=MODE == "full")
METHODS = ["scalearn", "adapter", "adapterfusion"]
K_LIST = course.by_mode(MODE, fast=[4, 16], cpu=[4, 16, 32, 100])
SEEDS = course.by_mode(MODE, fast=[0, 1], cpu=[0, 1, 2], full=[0, 1, 2, 3, 4])
"""),
    code("""
results = course.run_many(TARGET, SOURCES, METHODS, PRESET, seeds=SEEDS, k_shots=K_LIST)
"""),
    code("""
table = course.summary(results, by=["k_shot", "name"])
table["test (mean ± std)"].unstack("name")
"""),
    code("""
viz.few_shot_plot(results);
"""),
    md(r"""
With the presets' short epoch budgets a $k$-shot run takes only a few optimiser steps (steps
$= \min(1000, \text{epochs} \cdot \lceil k / \text{batch} \rceil)$), so fast- and CPU-mode numbers mostly show
the starting points; the paper's preset trains 30 epochs.

## Open the hood

Two checks in plain torch: the $k$-shot training sample is class-balanced, and the std column of the table is the
sample standard deviation over seeds.
"""),
    code("""
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
"""),
    md(r"""
## Exercises

1. Add `"scalearn_uniform_pp"` (S transfer parameters) to `METHODS`. Is it more stable across seeds at small k?
2. Add `"head_only"`: at which k does any adapter-based method beat a frozen encoder with a head?
3. Why does the spread over seeds shrink as k grows?

<details><summary>Solution 1</summary>

```python
more = course.run_many(TARGET, SOURCES, ["scalearn_uniform_pp"], PRESET, seeds=SEEDS, k_shots=K_LIST)
course.summary(more, by=["k_shot", "name"])
```
</details>

<details><summary>Solution 2</summary>

```python
ho = course.run_many(TARGET, SOURCES, ["head_only"], PRESET, seeds=SEEDS, k_shots=K_LIST)
viz.few_shot_plot(pd.concat([results, ho]));   # import pandas as pd
```
</details>

<details><summary>Solution 3</summary>

Each seed draws a different k-shot sample: with k = 4 a single unusual example moves the result a lot, with
k = 100 the samples look alike. The validation set is k-shot too, so model selection is noisy at small k.
</details>

This is the last notebook. Back to the [quickstart](00_quickstart.ipynb), or run the whole comparison from the
command line: `scalearn-lite transfer --help`.
"""),
])
