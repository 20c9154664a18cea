"""The baselines' own machinery: AdapterSoup as the paper's authors run it, and AdapterFusion over the sources.

AdapterSoup, a weight-space average of the target's most similar sources:

    sim(T, S)  = mean over target sentences t and source sentences s of cos(e(t), e(s))
    chosen     = the soup_k sources (the target's own adapter allowed) with the highest sim
    θ_soup     = Σ_i w_i θ_i,   w_i = sim_i / Σ_j sim_j   (or 1/k: soup_weighting="uniform")

e(·) is a sentence-embedding model with mean pooling: all-MiniLM-L6-v2, the embedded offline encoder,
which was trained as exactly that. Only a new head is trained on top of the souped adapter.
"""
from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from typing import Dict, List, Sequence, Tuple

import torch

from .config import FIXED_OMEGA
from .data import load_task_data
from .models import quiet_activation
from .scaling import AdapterWeights, ScaLearn, attach
from .sources import is_task_ref, load_adapter_into, source_weights
from .tasks import get_task

SOUP_SENTENCES = 100  # training sentences per task that the similarity is averaged over


@lru_cache(maxsize=1)
def sentence_encoder():
    """(model, tokenizer) of all-MiniLM-L6-v2 as a plain sentence encoder (no adapters), in eval mode."""
    from transformers import AutoModel, AutoTokenizer

    from .models import check_model, embedded_model_path

    path = str(embedded_model_path())
    check_model(path)  # CVE-2026-4372: config checked, attention kernel explicit
    return AutoModel.from_pretrained(path, attn_implementation="eager").eval(), AutoTokenizer.from_pretrained(path)


@torch.no_grad()
def sentence_embeddings(texts: Sequence[str], max_length: int = 128, batch_size: int = 64) -> torch.Tensor:
    """Mean-pooled, L2-normalised sentence embeddings: (N, d)."""
    model, tokenizer = sentence_encoder()
    out = []
    for i in range(0, len(texts), batch_size):
        enc = tokenizer(list(texts[i:i + batch_size]), truncation=True, max_length=max_length, padding=True,
                        return_tensors="pt")
        hidden = model(**enc).last_hidden_state  # (B, T, d)
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)  # (B, d)
        out.append(torch.nn.functional.normalize(pooled, dim=-1))
    return torch.cat(out)  # (N, d)


def mean_pairwise_cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean over all pairs (i, j) of cos(a_i, b_j) for unit rows a (N, d), b (M, d): mean(a) · mean(b)."""
    return float(a.mean(0) @ b.mean(0))


def rank_by_similarity(target_texts: Sequence[str], source_texts: Dict[str, Sequence[str]],
                       max_length: int = 128) -> List[Tuple[str, float]]:
    """[(source, mean pairwise cosine with the target's sentences)], most similar first."""
    t = sentence_embeddings(target_texts, max_length)
    sims = {name: mean_pairwise_cosine(t, sentence_embeddings(texts, max_length))
            for name, texts in source_texts.items()}
    return sorted(sims.items(), key=lambda kv: -kv[1])


def soup_selection(ranking: Sequence[Tuple[str, float]], k: int, weighting: str = "similarity"
                   ) -> List[Tuple[str, float]]:
    """The top-k of a ranking with their soup weights, which sum to 1: similarity-proportional or uniform."""
    top = list(ranking[:k])
    if weighting == "uniform":
        return [(name, 1.0 / len(top)) for name, _ in top]
    if weighting != "similarity":
        raise ValueError(f"soup weighting must be 'similarity' or 'uniform', got {weighting!r}")
    total = sum(sim for _, sim in top)
    if total <= 0:
        raise ValueError(f"AdapterSoup: the chosen sources' similarities sum to {total:.4f} <= 0, so they cannot "
                         "be normalised into weights; use soup_weighting='uniform'")
    return [(name, sim / total) for name, sim in top]


def soup_weights(per_source: List[List[AdapterWeights]], weights: Sequence[float]) -> List[AdapterWeights]:
    """Per layer, the weighted parameter-wise sum Σ_i w_i θ_i of several adapters ([source][layer] in)."""
    w = torch.tensor(list(weights), dtype=per_source[0][0].down_weight.dtype)  # (S,)

    def mix(xs: List[torch.Tensor]) -> torch.Tensor:
        return torch.einsum("s,s...->...", w, torch.stack(xs))  # (S, ...) -> (...)

    return [AdapterWeights(mix([a.down_weight for a in layer]), mix([a.down_bias for a in layer]),
                           mix([a.up_weight for a in layer]), mix([a.up_bias for a in layer]))
            for layer in zip(*per_source)]


def task_sentences(rows: List[dict], n: int = SOUP_SENTENCES) -> List[str]:
    """The first n training inputs of a task as text (pairs joined; multiple choice: the first choice)."""
    out = []
    for r in rows[:n]:
        a = r["text_a"] if "text_a" in r else r["choices_a"][0]
        b = r.get("text_b") if "text_a" in r else r["choices_b"][0]
        out.append(a if not b else f"{a} {b}")
    return out


# ------------------------------------------------------------- installing them into a transfer run
def build_soup(net, tokenizer, task, spec, rows, data_dir) -> dict:
    """AdapterSoup: rank the sources by sentence similarity to the target, average the top
    preset.soup_k with similarity weights, install the souped adapter as one fixed source (ω = 1)."""
    texts = {}
    for name, ref in zip(spec.sources, spec.source_refs):
        if not is_task_ref(name):
            raise ValueError(f"adaptersoup ranks sources by their training sentences, so each source must be a task "
                             f"name; {ref!r} is not")
        src_rows = (load_task_data(get_task(name), spec.preset, data_dir, as_source=True)["train"]
                    if name != task.name else rows["train"])
        texts[name] = task_sentences(src_rows)
    ranking = rank_by_similarity(task_sentences(rows["train"]), texts, spec.preset.max_length)
    chosen = soup_selection(ranking, spec.preset.soup_k, spec.preset.soup_weighting)
    refs = dict(zip(spec.sources, spec.source_refs))
    souped = soup_weights([source_weights(net, refs[n], n) for n, _ in chosen], [w for _, w in chosen])
    cfg = replace(FIXED_OMEGA, omega_shape="scalar")
    sl = attach(net, ScaLearn(cfg, ["soup"], [[w] for w in souped], net.config.hidden_size))
    sl.set_omega(torch.tensor(1.0), trainable=False)
    return {"ranking": ranking, "chosen": [n for n, _ in chosen], "weights": dict(chosen),
            "weighting": spec.preset.soup_weighting}


def fuse_sources(net, names: Sequence[str], refs: Sequence[str]):
    """Load the source adapters into `net` under their names; the Fuse block over them (fusion layer not added)."""
    from adapters.composition import Fuse

    for name, ref in zip(names, refs):
        load_adapter_into(net, ref, name)
    return Fuse(*names)


def build_fusion(net, spec):
    """AdapterFusion (dynamic) over the sources of `spec` (a runs.TransferSpec), its fusion layers trainable;
    returns the value regulariser's loss function."""
    fuse = fuse_sources(net, spec.sources, spec.source_refs)
    net.add_adapter_fusion(fuse, "dynamic")
    with quiet_activation():
        net.set_active_adapters(fuse)
        net.train_adapter_fusion(fuse)
    return net.get_fusion_regularization_loss  # the value regulariser, added to the loss before backward
