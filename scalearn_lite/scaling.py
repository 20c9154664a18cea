"""Stage 2 core: scaling coefficients ω over S frozen source adapters, run as one batched bank.

In every layer l, with x the attention block output, f the FFN output before its residual,
LN the layer's own frozen output LayerNorm and A_i the i-th source adapter (no residual):

    h     = LN(f + x)
    out_l = LN( Σ_i ω_i^l ⊙ A_i^l(h) + f + x ),    A_i(h) = W_up_i relu(W_down_i h + b_down_i) + b_up_i

The S adapters of a layer are one computation: their down-projections are concatenated into one
(d, S·r) matrix and the up-projections, each row block scaled by its source's ω, into one (S·r, d)
matrix, so Σ_i ω_i ⊙ A_i(h) is two matmuls whatever S is.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import ScaLearnConfig
from .models import encoder_layers


@dataclass
class AdapterWeights:
    """One seq_bn adapter in one layer, in nn.Linear layout: down (r, d), up (d, r)."""

    down_weight: torch.Tensor  # (r, d)
    down_bias: torch.Tensor  # (r,)
    up_weight: torch.Tensor  # (d, r), the adapter's constant `scaling` already folded in
    up_bias: torch.Tensor  # (d,)


class SourceBank(nn.Module):
    """The S frozen source adapters of one layer, stacked: Σ_i ω_i ⊙ A_i(h) in one batched computation."""

    def __init__(self, adapters: Sequence[AdapterWeights], mode: str = "batched"):
        super().__init__()
        if not adapters:
            raise ValueError("a source bank needs at least one adapter")
        ranks = [a.down_weight.shape[0] for a in adapters]
        self.num_sources = len(adapters)
        self.mode = mode
        self.register_buffer("w_down", torch.cat([a.down_weight for a in adapters], 0).T.contiguous())  # (d, S·r)
        self.register_buffer("b_down", torch.cat([a.down_bias for a in adapters], 0))  # (S·r,)
        self.register_buffer("w_up", torch.cat([a.up_weight for a in adapters], 1).T.contiguous())  # (S·r, d)
        self.register_buffer("b_up", torch.stack([a.up_bias for a in adapters], 0))  # (S, d)
        src = torch.repeat_interleave(torch.arange(len(adapters)), torch.tensor(ranks))
        self.register_buffer("row_source", src, persistent=False)  # (S·r,) source index of each bottleneck unit
        self.ranks = ranks

    @property
    def mode(self) -> str:
        """"batched" (one computation for all S sources) or "loop" (one adapter at a time: the reference)."""
        return self._mode

    @mode.setter
    def mode(self, mode: str) -> None:
        if mode not in ("batched", "loop"):
            raise ValueError(f"mode must be 'batched' or 'loop', got {mode!r}")
        self._mode = mode

    def forward(self, h: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
        """h (B, T, d), ω (S, d) or (S, 1) → Σ_i ω_i ⊙ A_i(h), (B, T, d)."""
        if self.mode == "loop":
            return self._loop(h, omega)
        z = F.relu(F.linear(h, self.w_down.T, self.b_down))  # (B, T, S·r)
        w_up = self.w_up * omega[self.row_source].to(self.w_up.dtype)  # (S·r, d): row block i scaled by ω_i
        b_up = (self.b_up * omega).sum(0)  # (d,)
        return F.linear(z, w_up.T.to(z.dtype), b_up.to(z.dtype))  # (B, T, d)

    def per_source(self, h: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
        """h (B, T, d), ω (S, d|1) → every term ω_i ⊙ A_i(h) apart, (S, B, T, d) (analysis; forward sums them)."""
        out, start = [], 0
        for i, r in enumerate(self.ranks):
            rows = slice(start, start + r)
            z = F.relu(F.linear(h, self.w_down[:, rows].T, self.b_down[rows]))  # (B, T, r)
            out.append(omega[i].to(h.dtype) * F.linear(z, self.w_up[rows].T, self.b_up[i]))  # (B, T, d)
            start += r
        return torch.stack(out)  # (S, B, T, d)

    def _loop(self, h: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
        """Reference: one adapter at a time, as adapters' Fuse/Average and the paper's fork run them."""
        out, start = 0, 0
        for i, r in enumerate(self.ranks):
            rows = slice(start, start + r)
            z = F.relu(F.linear(h, self.w_down[:, rows].T, self.b_down[rows]))  # (B, T, r)
            a = F.linear(z, self.w_up[rows].T, self.b_up[i])  # (B, T, d)
            out = out + omega[i] * a  # (B, T, d)
            start += r
        return out


class Omega(nn.Module):
    """ω for all layers: one tensor (L, S, d|1), or (1, S, d|1) shared by every layer ("++")."""

    def __init__(self, cfg: ScaLearnConfig, num_sources: int, hidden_size: int, num_layers: int):
        super().__init__()
        self.cfg = cfg
        self.num_layers = num_layers
        rows = 1 if cfg.share_layers else num_layers
        cols = hidden_size if cfg.omega_shape == "vector" else 1
        weight = torch.empty(rows, num_sources, cols)  # (L or 1, S, d or 1)
        nn.init.normal_(weight, mean=cfg.init_scale / num_sources, std=cfg.init_std)
        self.weight = nn.Parameter(weight)  # `model.scalearn.omega.weight`: every ω, as one tensor

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        if prefix + "omega" in state_dict and prefix + "weight" not in state_dict:  # saved before the rename
            state_dict[prefix + "weight"] = state_dict.pop(prefix + "omega")
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, layer: int) -> torch.Tensor:
        """ω of one layer, (S, d|1), with dropout on the tensor itself in training mode (a fresh mask per call)."""
        w = self.weight[0 if self.cfg.share_layers else layer]  # (S, d|1)
        return F.dropout(w, self.cfg.omega_dropout, self.training)

    def layer_values(self) -> torch.Tensor:
        """ω expanded to every layer without dropout, (L, S, d|1)."""
        return self.weight.detach().expand(self.num_layers, -1, -1)


class ScaledOutput(nn.Module):
    """Replaces a BERT/RoBERTa layer's output block: the FFN projection, then LN(Σ ω_i A_i(h) + f + x)."""

    def __init__(self, output: nn.Module, bank: SourceBank, omega: Omega, layer: int):
        super().__init__()
        self.dense, self.dropout, self.LayerNorm = output.dense, output.dropout, output.LayerNorm
        self.layer = layer
        # references, not submodules: ω and the banks are owned (and moved, saved) once, by `model.scalearn`
        self.__dict__["bank"], self.__dict__["omega"] = bank, omega

    def parts(self, hidden_states: torch.Tensor, input_tensor: torch.Tensor) -> tuple:
        """(ω_i ⊙ A_i(h) per source (S, B, T, d), f + x (B, T, d)) without ω dropout: what each source adds."""
        residual = self.dropout(self.dense(hidden_states)) + input_tensor  # (B, T, d) f + x
        return self.bank.per_source(self.LayerNorm(residual), self.omega.layer_values()[self.layer]), residual

    def forward(self, hidden_states: torch.Tensor, input_tensor: torch.Tensor) -> torch.Tensor:
        f = self.dropout(self.dense(hidden_states))  # (B, T, d) FFN output before its residual
        residual = f + input_tensor  # (B, T, d) f + x
        h = self.LayerNorm(residual)  # (B, T, d) the adapters' input
        return self.LayerNorm(self.bank(h, self.omega(self.layer)) + residual)  # (B, T, d)


class ScaLearn(nn.Module):
    """ω and the per-layer banks, installed into a model's layers by `attach`."""

    def __init__(self, cfg: ScaLearnConfig, sources: List[str], layers: List[List[AdapterWeights]],
                 hidden_size: int, mode: str = "batched"):
        super().__init__()
        _check_sources(sources, layers, hidden_size)
        self.cfg, self.sources = cfg, list(sources)
        self.omega = Omega(cfg, len(sources), hidden_size, len(layers))
        # layers[l][i]: source i's adapter in layer l
        self.banks = nn.ModuleList(SourceBank(per_layer, mode) for per_layer in layers)

    def set_mode(self, mode: str) -> None:
        """"batched" (one computation per layer) or "loop" (adapter by adapter, the reference)."""
        for bank in self.banks:  # the first bank refuses an unknown mode before any is changed
            bank.mode = mode

    def set_omega(self, values: torch.Tensor, trainable: Optional[bool] = None) -> None:
        """Overwrite ω with `values` broadcast to its shape (e.g. a one-hot (S, 1), or 1/S); optionally freeze it."""
        with torch.no_grad():
            self.omega.weight.copy_(torch.as_tensor(values, dtype=self.omega.weight.dtype).expand_as(self.omega.weight))
        if trainable is not None:
            self.omega.weight.requires_grad_(trainable)

    def num_transfer_parameters(self) -> int:
        """Trainable ω entries (the paper's 'transfer parameters'); the head is counted separately."""
        return self.omega.weight.numel()


def _check_sources(sources, layers, hidden_size) -> None:
    if not sources:
        raise ValueError("ScaLearn needs at least one source adapter; got an empty source list")
    dupes = sorted({s for s in sources if list(sources).count(s) > 1})
    if dupes:
        raise ValueError(f"duplicate sources {dupes}: each source may appear once (row i of ω means source i)")
    for l, per_layer in enumerate(layers):
        if len(per_layer) != len(sources):
            raise ValueError(f"layer {l} has {len(per_layer)} adapters for {len(sources)} sources")
        for name, a in zip(sources, per_layer):
            if a.down_weight.shape[1] != hidden_size or a.up_weight.shape[0] != hidden_size:
                raise ValueError(f"source {name!r} has hidden size {a.down_weight.shape[1]} in layer {l}, "
                                 f"but the base model has {hidden_size}: it was trained on another base model")


def attach(model, scalearn: ScaLearn) -> ScaLearn:
    """Install `scalearn` into every layer of `model` (in place) and register it as `model.scalearn`."""
    layers = encoder_layers(model)
    if len(layers) != len(scalearn.banks):
        raise ValueError(f"the sources have {len(scalearn.banks)} layers but the base model has {len(layers)}: "
                         "they were trained on another base model")
    if hasattr(model, "scalearn"):
        raise ValueError("this model already has ScaLearn attached; build a fresh model for a new transfer")
    for l, layer in enumerate(layers):
        layer.output = ScaledOutput(layer.output, scalearn.banks[l], scalearn.omega, l)
    model.scalearn = scalearn
    scalearn.train(model.training)  # a new module starts in training mode: ω dropout must follow the model's mode
    return scalearn
