"""The methods of a transfer run: the four ScaLearn variants and the baselines, what each installs into the base
model, which parameters it trains and how many of them count as transfer parameters (the paper's count).

ScaLearn itself (ω, the batched source bank, attaching it to the layers) is scaling.py; the baselines' own machinery
(AdapterFusion, AdapterSoup) is baselines.py; training is train.py; run folders are runs.py.
"""
from __future__ import annotations

from typing import List

import torch

from .baselines import build_fusion, build_soup
from .config import PAPER_NAMES, VARIANTS, ScaLearnConfig
from .scaling import AdapterWeights, ScaLearn, attach
from .sources import source_weights
from .tasks import Task

OMEGA_METHODS = tuple(VARIANTS)  # scalearn, scalearn_uniform, scalearn_pp, scalearn_uniform_pp
BASELINES = ("adapter", "adapterfusion", "average", "head_only", "adaptersoup", "finetune")
METHODS = OMEGA_METHODS + BASELINES
METHOD_NAMES = {**PAPER_NAMES, "adapter": "Adapter", "adapterfusion": "AdapterFusion", "average": "Average (ω=1/S)",
                "head_only": "Head only (ω=0)", "adaptersoup": "AdapterSoup", "finetune": "Full fine-tuning"}
HEAD = "target"
# nothing below the head trains: the encoder's outputs on the validation rows are the same every epoch
FIXED_ENCODER = ("average", "head_only", "adaptersoup")


def check_method(method: str) -> str:
    """The method name, or a ValueError listing the valid ones."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    return method


def bank_layers(per_source: List[List[AdapterWeights]]) -> List[List[AdapterWeights]]:
    return [list(per_layer) for per_layer in zip(*per_source)]  # [layer][source]


def build_scalearn(net, names: List[str], refs: List[str], cfg: ScaLearnConfig) -> ScaLearn:
    """Load the sources into `net`, stack them into per-layer banks and install ω (in place)."""
    per_source = [source_weights(net, ref, name) for name, ref in zip(names, refs)]
    scalearn = ScaLearn(cfg, names, bank_layers(per_source), net.config.hidden_size)
    return attach(net, scalearn)


def build_method(net, tokenizer, task: Task, spec, rows, data_dir):
    """Install the method of `spec` (a runs.TransferSpec, sources resolved) into `net`; returns (extra loss fn or
    None, soup selection or None)."""
    m = spec.method
    if m in OMEGA_METHODS:
        build_scalearn(net, spec.sources, spec.source_refs, VARIANTS[m])
    elif m == "average":
        sl = build_scalearn(net, spec.sources, spec.source_refs, ScaLearnConfig(omega_dropout=0.0, init_std=0.0))
        sl.set_omega(torch.tensor(1.0 / len(spec.sources)), trainable=False)
    elif m == "adaptersoup":
        return None, build_soup(net, tokenizer, task, spec, rows, data_dir)
    elif m == "adapterfusion":
        return build_fusion(net, spec), None
    return None, None


def trainable(net, method: str) -> List[torch.nn.Parameter]:
    """Freeze everything but what the method trains (ω / fusion / everything) and the new head."""
    if method == "finetune":
        for p in net.parameters():
            p.requires_grad_(True)
        return list(net.parameters())
    keep = set()
    if method in OMEGA_METHODS:
        keep.add(id(net.scalearn.omega.weight))
    if method == "adapterfusion":
        keep |= {id(p) for n, p in net.named_parameters() if "adapter_fusion_layer" in n}
    keep |= {id(p) for p in net.heads[HEAD].parameters()}
    params = []
    for p in net.parameters():
        p.requires_grad_(id(p) in keep)
        if id(p) in keep:
            params.append(p)
    return params


def transfer_parameters(net, method: str) -> int:
    """Parameters the method learns for transfer, the head excluded (paper's count)."""
    if method in OMEGA_METHODS:
        return net.scalearn.num_transfer_parameters()
    if method == "adapterfusion":
        return sum(p.numel() for n, p in net.named_parameters() if "adapter_fusion_layer" in n)
    if method == "finetune":
        return sum(p.numel() for n, p in net.named_parameters() if not n.startswith("heads."))
    return 0


def omega_snapshot(net) -> dict:
    """ω per layer × source (mean over hidden units) flattened into history columns."""
    if not hasattr(net, "scalearn"):
        return {}
    values = net.scalearn.omega.layer_values().mean(-1)  # (L, S)
    return {f"omega/{l}/{s}": float(values[l, i]) for l in range(values.shape[0])
            for i, s in enumerate(net.scalearn.sources)}
