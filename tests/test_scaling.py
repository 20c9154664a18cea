"""Exactness of the ScaLearn core on tiny random BERT and RoBERTa models with random adapter weights."""
import pytest
import torch
import torch.nn.functional as F

import importlib

from conftest import paper_transfer_params, tiny_config
from scalearn_lite.config import VARIANTS, ScaLearnConfig
from scalearn_lite.models import encoder_layers, from_config
from scalearn_lite.params import count_parameters
from scalearn_lite.scaling import AdapterWeights, ScaLearn, SourceBank, attach
from scalearn_lite.sources import extract_weights, seq_bn_config

tr = importlib.import_module("scalearn_lite.transfer")  # the module (the package exports the function `transfer`)
from scalearn_lite import methods as methods_mod

SOURCES = ["a", "b", "c"]
KINDS = ["bert", "roberta"]


def adapters_model(kind: str, seed: int = 0):
    """Tiny AdapterModel with three seq_bn adapters (random non-zero weights) and a 3-class head."""
    torch.manual_seed(seed)
    model = from_config(tiny_config(kind))
    for name in SOURCES:
        model.add_adapter(name, config=seq_bn_config())
    with torch.no_grad():
        for n, p in model.named_parameters():
            if ".adapters." in n:
                p.normal_(0, 0.3)
    model.add_classification_head("h", num_labels=3)
    return model.eval()


def batch(seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 120, (3, 9), generator=g)
    mask = torch.ones_like(ids)
    mask[0, 6:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def to_scalearn(model, cfg=VARIANTS["scalearn"]) -> ScaLearn:
    """Move the model's adapters into a ScaLearn bank (in place) and return it, in eval mode."""
    per_source = [extract_weights(model, n) for n in SOURCES]
    for n in SOURCES:
        model.delete_adapter(n)
    sl = attach(model, ScaLearn(cfg, SOURCES, [list(x) for x in zip(*per_source)], model.config.hidden_size))
    model.eval()
    return sl


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("k", range(3))
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_one_hot_omega_reproduces_the_single_adapter(kind, k, variant):
    model = adapters_model(kind)
    model.set_active_adapters(SOURCES[k])
    with torch.no_grad():
        ref = model(**batch(), head="h", output_hidden_states=True)
    sl = to_scalearn(model, VARIANTS[variant])
    sl.set_omega(F.one_hot(torch.tensor(k), 3).float().view(3, 1))
    with torch.no_grad():
        out = model(**batch(), head="h", output_hidden_states=True)
    assert (out.logits - ref.logits).abs().max() <= 1e-5
    for h_ours, h_ref in zip(out.hidden_states, ref.hidden_states):
        assert (h_ours - h_ref).abs().max() <= 1e-5


@pytest.mark.parametrize("kind", KINDS)
def test_zero_omega_is_the_frozen_encoder(kind):
    model = adapters_model(kind)
    model.set_active_adapters(None)
    with torch.no_grad():
        ref = model(**batch(), head="h").logits
    to_scalearn(model).set_omega(torch.zeros(3, 1))
    with torch.no_grad():
        assert (model(**batch(), head="h").logits - ref).abs().max() <= 1e-5


@pytest.mark.parametrize("kind", KINDS)
def test_batched_bank_equals_each_adapter_run_by_adapters(kind):
    """Σ ω_i A_i(h) from the batched bank = the adapters' own modules called one by one."""
    model = adapters_model(kind)
    layer_adapters = encoder_layers(model)[1].output.adapters
    h = torch.randn(2, 7, model.config.hidden_size)
    omega = torch.randn(3, model.config.hidden_size)
    with torch.no_grad():
        ref = sum(omega[i] * layer_adapters[n](h, torch.zeros_like(h))[0] for i, n in enumerate(SOURCES))
        bank = SourceBank(extract_weights(model, "a")[1:2] + extract_weights(model, "b")[1:2]
                          + extract_weights(model, "c")[1:2])
        assert (bank(h, omega) - ref).abs().max() <= 1e-5
        bank.mode = "loop"
        assert (bank(h, omega) - ref).abs().max() <= 1e-5


def test_a_bank_refuses_an_unknown_mode_when_built_and_when_set():
    weights = [AdapterWeights(torch.randn(4, 8), torch.randn(4), torch.randn(8, 4), torch.randn(8))]
    with pytest.raises(ValueError, match="mode must be 'batched' or 'loop', got 'looped'"):
        SourceBank(weights, mode="looped")
    bank = SourceBank(weights)
    with pytest.raises(ValueError, match="got 'fast'"):
        bank.mode = "fast"
    assert bank.mode == "batched"  # unchanged after the refusal
    sl = ScaLearn(VARIANTS["scalearn"], ["a"], [weights, weights], 8)
    with pytest.raises(ValueError, match="got 'fast'"):
        sl.set_mode("fast")
    assert [b.mode for b in sl.banks] == ["batched", "batched"]


@pytest.mark.parametrize("kind", KINDS)
def test_layer_output_is_the_design_formula_in_plain_torch(kind):
    model = adapters_model(kind)
    weights = {n: extract_weights(model, n)[0] for n in SOURCES}
    sl = to_scalearn(model)
    sl.set_omega(torch.randn_like(sl.omega.weight))
    out_block = encoder_layers(model)[0].output
    d = model.config.hidden_size
    inter, x = torch.randn(2, 5, 2 * d), torch.randn(2, 5, d)
    with torch.no_grad():
        got = out_block(inter, x)
        ln = out_block.LayerNorm
        f = inter @ out_block.dense.weight.T + out_block.dense.bias  # FFN output before its residual
        h = ln(f + x)
        omega = sl.omega.weight[0]  # (S, d), layer 0
        adapted = sum(omega[i] * (torch.relu(h @ w.down_weight.T + w.down_bias) @ w.up_weight.T + w.up_bias)
                      for i, w in enumerate(weights[n] for n in SOURCES))
        want = ln(adapted + f + x)
    assert (got - want).abs().max() <= 1e-5


@pytest.mark.parametrize("variant", ["scalearn_pp", "scalearn_uniform_pp"])
def test_pp_variants_hold_one_omega_whose_gradient_sums_over_layers(variant):
    shared = adapters_model("bert")
    sl = to_scalearn(shared, VARIANTS[variant])
    omegas = [p for n, p in shared.named_parameters() if "omega" in n]
    assert len(omegas) == 1 and omegas[0].shape[0] == 1
    assert sum(p.numel() for p in sl.parameters() if p.requires_grad) == omegas[0].numel()
    # The same ω copied into a per-layer model: the shared gradient must be the sum of the per-layer ones.
    per_layer = adapters_model("bert")
    cfg = ScaLearnConfig(omega_shape=VARIANTS[variant].omega_shape, share_layers=False, omega_dropout=0.0)
    sl_per = to_scalearn(per_layer, cfg)
    sl_per.set_omega(sl.omega.weight.detach())
    per_layer.heads["h"].load_state_dict(shared.heads["h"].state_dict())
    for m in (shared, per_layer):  # eval: dropout off, gradients still flow
        m(**batch(), head="h").logits.pow(2).sum().backward()
    per_layer_grads = sl_per.omega.weight.grad  # (L, S, d|1)
    assert per_layer_grads.abs().min(dim=0).values.sum() > 0  # every layer contributes
    torch.testing.assert_close(sl.omega.weight.grad[0], per_layer_grads.sum(0), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_omega_initialisation_is_two_over_s(variant):
    torch.manual_seed(0)
    layers = [[AdapterWeights(torch.randn(4, 64), torch.randn(4), torch.randn(64, 4), torch.randn(64))
               for _ in range(8)] for _ in range(3)]
    sl = ScaLearn(VARIANTS[variant], [f"s{i}" for i in range(8)], layers, 64)
    omega = sl.omega.weight.detach()
    assert abs(omega.mean().item() - 2 / 8) < 1e-3
    assert omega.std().item() < 5e-3
    # the paper's shape of each variant (3 layers, 8 sources, d = 64), not one derived from the config's fields
    assert omega.shape == {"scalearn": (3, 8, 64), "scalearn_uniform": (3, 8, 1), "scalearn_pp": (1, 8, 64),
                           "scalearn_uniform_pp": (1, 8, 1)}[variant]


def test_dropout_acts_on_omega_itself_and_is_off_in_eval():
    model = adapters_model("bert")
    sl = to_scalearn(model, VARIANTS["scalearn"])
    sl.train()
    torch.manual_seed(0)
    dropped = sl.omega(0)
    raw = sl.omega.weight[0]
    kept = dropped != 0
    assert 0 < kept.float().mean() < 1  # some entries dropped, some kept
    torch.testing.assert_close(dropped[kept], raw[kept] / 0.7)  # survivors scaled by 1/(1-p)
    model.train()
    torch.manual_seed(1)
    a = model(**batch(), head="h").logits
    b = model(**batch(), head="h").logits
    assert not torch.equal(a, b)  # a fresh mask per forward pass
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(**batch(), head="h").logits, model(**batch(), head="h").logits)
        assert torch.equal(sl.omega(0), sl.omega.weight[0])


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_training_drops_omega_at_0_3_except_in_uniform_pp(variant):
    """Measured on the ω the layers receive: about 30% of entries zeroed, survivors scaled by 1/0.7; none for
    ScaLearnUniform++; the raw ω in eval mode."""
    torch.manual_seed(0)
    layers = [[AdapterWeights(torch.randn(4, 64), torch.randn(4), torch.randn(64, 4), torch.randn(64))
               for _ in range(8)] for _ in range(3)]
    sl = ScaLearn(VARIANTS[variant], [f"s{i}" for i in range(8)], layers, 64).train()
    raw = sl.omega.layer_values()[2]  # (S, d|1): layer 2's ω without dropout
    with torch.no_grad():
        draws = torch.stack([sl.omega(2) for _ in range(200)])  # (200, S, d|1): 1,600 entries at least
    if variant == "scalearn_uniform_pp":
        assert torch.equal(draws, raw.expand_as(draws))
    else:
        kept = draws != 0
        assert abs(1 - kept.float().mean().item() - 0.3) < 0.05
        torch.testing.assert_close(draws[kept], (raw / 0.7).expand_as(draws)[kept])
        assert not torch.equal(draws[0], draws[1])  # a fresh mask per call
    sl.eval()
    assert torch.equal(sl.omega(2), raw)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_each_variant_learns_the_papers_omega_count_and_a_step_moves_only_omega_and_head(variant):
    """On a tiny model (L = 2, S = 3, d = 32): ScaLearn's only parameters are ω, as many as the paper counts and as
    `scalearn-lite params` reports; one optimiser step on what the transfer trains changes ω and the head only."""
    model = adapters_model("bert")
    model.add_classification_head(methods_mod.HEAD, num_labels=3)
    sl = to_scalearn(model, VARIANTS[variant])
    expected = paper_transfer_params(variant, layers=2, sources=3, hidden=32)
    assert sum(p.numel() for p in sl.parameters()) == sl.num_transfer_parameters() == expected  # banks: buffers
    assert count_parameters(tiny_config("bert"), 3)[variant] == expected
    params = methods_mod.trainable(model, variant)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    opt = torch.optim.AdamW(params, lr=1e-2, weight_decay=0.0)
    F.cross_entropy(model(**batch(), head=methods_mod.HEAD).logits, torch.tensor([0, 1, 2])).backward()
    opt.step()
    changed = {k for k, v in model.state_dict().items() if not torch.equal(before[k], v)}
    head = {k for k in before if k.startswith(f"heads.{methods_mod.HEAD}.")}
    assert "scalearn.omega.weight" in changed and changed & head
    assert changed <= {"scalearn.omega.weight"} | head, sorted(changed - head)
    assert any(k.startswith("scalearn.banks.") for k in before) and any(".attention." in k for k in before)


def test_bank_runs_under_cpu_autocast():
    model = adapters_model("roberta")
    to_scalearn(model)
    with torch.no_grad():
        ref = model(**batch(), head="h").logits
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(**batch(), head="h").logits
    assert torch.isfinite(low).all() and (low.float() - ref).abs().max() < 0.1


def test_bad_sources_give_clear_errors():
    w = [AdapterWeights(torch.randn(2, 8), torch.randn(2), torch.randn(8, 2), torch.randn(8))]
    with pytest.raises(ValueError, match="empty source list"):
        ScaLearn(VARIANTS["scalearn"], [], [[]], 8)
    with pytest.raises(ValueError, match="duplicate sources"):
        ScaLearn(VARIANTS["scalearn"], ["a", "a"], [w * 2], 8)
    with pytest.raises(ValueError, match="hidden size 8.*has 16"):
        ScaLearn(VARIANTS["scalearn"], ["a"], [w], 16)
    model = adapters_model("bert")  # 2 layers
    with pytest.raises(ValueError, match="1 layers but the base model has 2"):
        attach(model, ScaLearn(VARIANTS["scalearn"], ["a"], [[AdapterWeights(
            torch.randn(2, 32), torch.randn(2), torch.randn(32, 2), torch.randn(32))]], 32))
    with pytest.raises(ValueError, match="omega_shape"):
        ScaLearnConfig(omega_shape="matrix")


@pytest.mark.parametrize("training", [False, True])
def test_attach_follows_the_models_train_or_eval_mode(training):
    """A model in eval mode (as from_pretrained returns it) stays deterministic once ScaLearn is attached."""
    model = adapters_model("roberta").train(training)
    per_source = [extract_weights(model, n) for n in SOURCES]
    sl = attach(model, ScaLearn(VARIANTS["scalearn"], SOURCES, [list(x) for x in zip(*per_source)], 32))
    assert sl.training is training and sl.omega.training is training
    with torch.no_grad():
        outs = [model.base_model(**batch()).last_hidden_state for _ in range(2)]
    assert torch.equal(*outs) is not training  # dropout (on ω too) draws fresh masks per pass only in training


def test_omega_is_one_parameter_named_weight_and_a_state_dict_of_the_old_name_still_loads():
    """`model.scalearn.omega.weight` holds every ω; state dicts saved when it was `...omega.omega` load unchanged."""
    model = adapters_model("bert")
    sl = to_scalearn(model)
    assert [n for n, _ in sl.named_parameters()] == ["omega.weight"]
    with torch.no_grad():
        sl.omega.weight.uniform_(-1, 1)
    old = {("omega.omega" if k == "omega.weight" else k): v.clone() for k, v in sl.state_dict().items()}
    fresh = to_scalearn(adapters_model("bert"))
    fresh.load_state_dict(old)
    assert torch.equal(fresh.omega.weight, sl.omega.weight)
