"""The methods of a transfer run: the four ScaLearn variants and the baselines, what each installs into the base
model, which parameters it trains and how many of them count as transfer parameters (the paper's count).

ScaLearn itself (ω, the batched source bank, attaching it to the layers) is scaling.py; the baselines' own machinery
(AdapterFusion, AdapterSoup) is baselines.py; training is train.py; run folders are runs.py.
"""
from __future__ import annotations

from typing import List

import torch

from .baselines import build_fusion, build_soup
from .config import FIXED_OMEGA, PAPER_NAMES, VARIANTS, Preset, ScaLearnConfig
from .scaling import AdapterWeights, ScaLearn, attach
from .sources import source_weights
from .tasks import Task

OMEGA_METHODS = tuple(VARIANTS)  # scalearn, scalearn_uniform, scalearn_pp, scalearn_uniform_pp
# fixed_omega: ScaLearn's ω frozen at its start 2/S, only the head trains: the control that tells learning from
# the initial scale (every claim that *learned* ω helps stands beside it)
BASELINES = ("adapter", "adapterfusion", "fixed_omega", "average", "head_only", "adaptersoup", "finetune")
METHODS = OMEGA_METHODS + BASELINES
METHOD_NAMES = {**PAPER_NAMES, "adapter": "Adapter", "adapterfusion": "AdapterFusion",
                "fixed_omega": "ω fixed at 2/S", "average": "Average (ω=1/S)",
                "head_only": "Head only (ω=0)", "adaptersoup": "AdapterSoup", "finetune": "Full fine-tuning"}
HEAD = "target"
# nothing below the head trains: the encoder's outputs on the validation rows are the same every epoch
FIXED_ENCODER = ("fixed_omega", "average", "head_only", "adaptersoup")
# methods whose ω is fixed, not learned: (what ω is set to, as a function of S)
FIXED_OMEGA_VALUE = {"fixed_omega": lambda S: FIXED_OMEGA.init_scale / S, "average": lambda S: 1.0 / S}


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
    elif m in FIXED_OMEGA_VALUE:
        sl = build_scalearn(net, spec.sources, spec.source_refs, FIXED_OMEGA)
        sl.set_omega(torch.tensor(FIXED_OMEGA_VALUE[m](len(spec.sources))), trainable=False)
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


def param_groups(net, params: List[torch.nn.Parameter], method: str, preset: Preset) -> list:
    """The optimiser's groups: ω at the preset's ω rate (omega_lr, else transfer_lr), everything else at the
    method's rate (fit's lr). One group, as in the paper, where the two rates are equal."""
    if method not in OMEGA_METHODS or preset.omega_rate() == preset.transfer_lr:
        return [{"params": params}]
    omega = net.scalearn.omega.weight
    return [{"params": [p for p in params if p is not omega]}, {"params": [omega], "lr": preset.omega_rate()}]


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
    """ω per layer × source flattened into history columns: omega/<l>/<source> the mean over hidden units,
    omega_abs/<l>/<source> the mean |ω − 2/S| over hidden units (how far the units moved from the start)."""
    if not hasattr(net, "scalearn"):
        return {}
    sl = net.scalearn
    values = sl.omega.layer_values().float()  # (L, S, d|1)
    means = values.mean(-1)  # (L, S)
    moved = (values - sl.cfg.init_scale / len(sl.sources)).abs().mean(-1)  # (L, S)
    out = {}
    for kind, table in (("omega", means), ("omega_abs", moved)):
        out.update({f"{kind}/{l}/{s}": float(table[l, i]) for l in range(table.shape[0])
                    for i, s in enumerate(sl.sources)})
    return out
