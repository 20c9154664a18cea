"""Golden test: our ScaLearn layers give the numbers of the paper authors' own implementation.

`<repo>/../shared/golden/authors-scalearn/` (or `$SCALEARN_GOLDEN_DIR/authors-scalearn/`) holds tensors
produced by running CPJKU/ScaLearn (their adapter-transformers 3.2.1 fork) on a tiny random RoBERTa with
three random seq_bn adapters and fixed non-uniform ω, for adapter `scaling` 1.0 and 0.5; its README says
how. Here the same base weights, the authors' saved adapter folders (through `sources.load_adapter_into`,
the path every source takes) and ω are built with our public API and compared:

* hidden states, eval mode: max |ours - theirs| <= 1e-5 (absolute) over every layer (embeddings + 2),
  example, position (padding included) and unit, for the base model, each single adapter, one-hot ω
  and all four variants;
* d/dω of (last_hidden_state * R).sum(): max |ours - theirs| <= 1e-4 absolute (their gradients reach 21.6);
* training mode with dropout under the same seed (only under torch 2.13, the version they were made with).
"""
import os
from functools import lru_cache
from pathlib import Path
from typing import Dict, Tuple

import pytest
import torch
import torch.nn.functional as F

from conftest import ROOT
from scalearn_lite.config import VARIANTS
from scalearn_lite.models import encoder_layers, from_config, quiet_activation
from scalearn_lite.scaling import ScaLearn
from scalearn_lite.sources import load_adapter_into
from scalearn_lite.methods import build_scalearn

GOLDEN_ROOT = Path(os.environ.get("SCALEARN_GOLDEN_DIR") or ROOT.parent / "shared" / "golden")
GOLDEN = GOLDEN_ROOT / "authors-scalearn"
if not GOLDEN_ROOT.is_dir():
    pytest.skip(f"the authors' golden outputs are not here: {GOLDEN_ROOT} is absent "
                "(set SCALEARN_GOLDEN_DIR to the folder holding authors-scalearn/)", allow_module_level=True)

HS_TOL = 1e-5  # absolute, per element of every hidden state
GRAD_TOL = 1e-4  # absolute, per element of dL/dω
SCALINGS = ["s1.0", "s0.5"]  # the adapters' constant `scaling`: 1.0 and 0.5
SOURCES = ["a", "b", "c"]
SINGLES = [f"single_{n}" for n in SOURCES]
# The authors' tiny RoBERTa (their README), no pooler.
TINY = dict(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
            max_position_embeddings=40, type_vocab_size=1, pad_token_id=1, bos_token_id=0, eos_token_id=2,
            hidden_act="gelu", layer_norm_eps=1e-5, hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
NOT_IN_BASE = ("pooler.", "prompt_tuning.")  # our AdapterModel's pooler and adapters' unused prompt-tuning copy


@lru_cache(maxsize=None)
def golden(name: str) -> dict:
    """A golden file as plain tensors, e.g. golden("omegas.pt") or golden("s0.5/authors_out.pt"); do not mutate."""
    return torch.load(GOLDEN / name, weights_only=True)


def batch() -> Dict[str, torch.Tensor]:
    """input_ids and attention_mask (3, 10): lengths 10, 7, 4, padded with id 1."""
    return golden("batch.pt")


def folders(scaling: str) -> list:
    """The authors' save_adapter folders of sources a, b, c."""
    return [str(GOLDEN / scaling / "adapters" / n) for n in SOURCES]


def base_net():
    """Our RoBERTa AdapterModel holding the authors' base weights, in eval mode (as from_pretrained returns it)."""
    from transformers import RobertaConfig

    net = from_config(RobertaConfig(**TINY))
    missing, unexpected = net.base_model.load_state_dict(golden("base.pt"), strict=False)
    assert [k for k in missing if not k.startswith(NOT_IN_BASE)] == [], "base weights left unloaded"
    assert set(unexpected) <= {"embeddings.position_ids"}  # a non-persistent buffer in transformers 4.57
    return net.eval()


def single_net(scaling: str, name: str):
    """The base model with the authors' adapter `name` loaded through our source loader and active."""
    net = base_net()
    load_adapter_into(net, folders(scaling)[SOURCES.index(name)], name)
    with quiet_activation():
        net.set_active_adapters(name)
    return net


def variant_net(scaling: str, variant: str) -> Tuple[torch.nn.Module, ScaLearn]:
    """The base model with ScaLearn `variant` over the authors' adapters, ω set to the authors' ω."""
    net = base_net()
    sl = build_scalearn(net, SOURCES, folders(scaling), VARIANTS[variant])
    omega = golden("omegas.pt")[variant]  # (L or 1, S, d or 1)
    assert sl.omega.weight.shape == omega.shape  # set_omega broadcasts: check the shape before
    sl.set_omega(omega)
    return net, sl


def case_net(scaling: str, case: str):
    """The model of one golden case: "base", "single_<n>" or a variant name."""
    if case == "base":
        return base_net()
    if case in SINGLES:
        return single_net(scaling, case[len("single_"):])
    return variant_net(scaling, case)[0]


@torch.no_grad()
def hidden_states(net) -> torch.Tensor:
    """All hidden states of the golden batch, embeddings + every layer: (L+1, B, T, d)."""
    return torch.stack(net.base_model(**batch(), output_hidden_states=True).hidden_states)


def assert_close(ours: torch.Tensor, theirs: torch.Tensor, tol: float, what: str) -> None:
    assert ours.shape == theirs.shape, f"{what}: shape {tuple(ours.shape)} vs the authors' {tuple(theirs.shape)}"
    err = (ours - theirs).abs().max().item()
    assert err <= tol, f"{what}: max |ours - authors'| = {err:.3g} > {tol:g} (theirs up to {theirs.abs().max():.3g})"


# ------------------------------------------------------------------------------------------ eval mode
@pytest.mark.parametrize("scaling", SCALINGS)
@pytest.mark.parametrize("case", ["base"] + SINGLES)
def test_base_and_single_adapter_equal_the_authors(scaling, case):
    """Their adapter folders load through our source loader and run in adapters 1.3.0 as in their fork."""
    theirs = golden(f"{scaling}/authors_out.pt")[case]["hs"]  # (L+1, B, T, d)
    assert_close(hidden_states(case_net(scaling, case)), theirs, HS_TOL, f"{scaling} {case} hidden states")


@pytest.mark.parametrize("scaling", SCALINGS)
@pytest.mark.parametrize("k", range(len(SOURCES)))
def test_one_hot_omega_equals_the_authors_single_adapter(scaling, k):
    """Our batched bank with ω one-hot on source k gives the authors' single adapter k."""
    net, sl = variant_net(scaling, "scalearn_uniform")
    sl.set_omega(F.one_hot(torch.tensor(k), len(SOURCES)).float().view(-1, 1))  # (S, 1) → every layer
    theirs = golden(f"{scaling}/authors_out.pt")[SINGLES[k]]["hs"]
    assert_close(hidden_states(net), theirs, HS_TOL, f"{scaling} one-hot ω on {SOURCES[k]}")


@pytest.mark.parametrize("scaling", SCALINGS)
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_variant_hidden_states_equal_the_authors(scaling, variant):
    net, _ = variant_net(scaling, variant)  # no .eval() after building: attaching keeps the model's eval mode
    out = golden(f"{scaling}/authors_out.pt")
    ours = hidden_states(net)
    assert_close(ours, out[variant]["hs"], HS_TOL, f"{scaling} {variant} hidden states")
    moved = (out[variant]["hs"][-1] - out["base"]["hs"][-1]).abs().max()
    assert moved > 1000 * HS_TOL  # ω really moves the output: the comparison is not base vs base


@pytest.mark.parametrize("scaling", SCALINGS)
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_omega_gradient_equals_the_authors(scaling, variant):
    """d/dω of (last_hidden_state * R).sum() in eval mode, R ~ N(0, 1) (3, 10, 32) from seed 5."""
    net, sl = variant_net(scaling, variant)
    R = torch.randn(3, 10, 32, generator=torch.Generator().manual_seed(5))  # (B, T, d)
    loss = (net.base_model(**batch()).last_hidden_state * R).sum()
    (grad,) = torch.autograd.grad(loss, sl.omega.weight)  # (L or 1, S, d or 1)
    assert_close(grad, golden(f"{scaling}/authors_out.pt")[variant]["grad"], GRAD_TOL, f"{scaling} {variant} dL/dω")


@pytest.mark.parametrize("variant", ["scalearn_pp", "scalearn_uniform_pp"])
def test_pp_variants_hold_one_shared_omega(variant):
    """One ω tensor (1, S, d|1), as the authors' shared_parameters[...]["omega"], used by every layer."""
    net, sl = variant_net("s1.0", variant)
    omegas = [p for n, p in net.named_parameters() if "omega" in n]
    assert len(omegas) == 1 and omegas[0] is sl.omega.weight
    assert sl.omega.weight.shape == golden("omegas.pt")[variant].shape  # (1, S, d or 1)
    assert all(layer.output.omega is sl.omega for layer in encoder_layers(net))
    assert torch.equal(sl.omega(0), sl.omega(1))  # eval mode: both layers read the same values


# -------------------------------------------------------------------------------------- training mode
@pytest.mark.skipif(not torch.__version__.startswith("2.13."),
                    reason=f"training-mode goldens need dropout masks drawn as torch 2.13 draws them "
                           f"(they were made with torch 2.13.0; this is {torch.__version__})")
@pytest.mark.parametrize("scaling", SCALINGS)
@pytest.mark.parametrize("case", ["base"] + SINGLES + list(VARIANTS))
def test_training_mode_with_dropout_equals_the_authors(scaling, case):
    """Last hidden state in training mode after torch.manual_seed(7): dropout on hidden, attention and ω."""
    net = case_net(scaling, case).train()
    torch.manual_seed(7)
    with torch.no_grad():
        ours = net.base_model(**batch()).last_hidden_state  # (B, T, d)
    assert_close(ours, golden(f"{scaling}/authors_out.pt")[case]["train_hs"], HS_TOL, f"{scaling} {case} training")
