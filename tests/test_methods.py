"""methods: what each method installs and trains — the fixed-ω control, ω's own learning rate, ω's snapshots."""
import importlib

import pytest
import torch
from safetensors.torch import load_file

from conftest import tiny_config
from scalearn_lite import methods as methods_mod
from scalearn_lite.config import FIXED_OMEGA, VARIANTS, get_preset
from scalearn_lite.models import from_config
from scalearn_lite.runs import load_omega
from scalearn_lite.scaling import AdapterWeights, ScaLearn, attach
from scalearn_lite.train import schedule_sum

tr = importlib.import_module("scalearn_lite.transfer")
TINY = get_preset("tiny").with_(max_train=128, transfer_epochs=1)


def scalearn_model(cfg, sources=("a", "b", "c"), seed=0):
    torch.manual_seed(seed)
    net = from_config(tiny_config("bert"))
    d, r, L = net.config.hidden_size, 4, net.config.num_hidden_layers
    layers = [[AdapterWeights(torch.randn(r, d), torch.randn(r), torch.randn(d, r), torch.randn(d))
               for _ in sources] for _ in range(L)]
    attach(net, ScaLearn(cfg, list(sources), layers, d))
    net.add_classification_head(methods_mod.HEAD, num_labels=2)
    return net


def test_fixed_omega_is_named_once_and_every_fixed_method_uses_it():
    assert FIXED_OMEGA.omega_dropout == 0.0 and FIXED_OMEGA.init_std == 0.0
    assert methods_mod.FIXED_OMEGA_VALUE["fixed_omega"](4) == pytest.approx(0.5)  # 2/S, ScaLearn's start
    assert methods_mod.FIXED_OMEGA_VALUE["average"](4) == pytest.approx(0.25)
    assert "fixed_omega" in methods_mod.BASELINES and "fixed_omega" in methods_mod.FIXED_ENCODER
    assert methods_mod.METHOD_NAMES["fixed_omega"] == "ω fixed at 2/S"


def test_param_groups_give_omega_its_own_rate_only_where_it_differs():
    net = scalearn_model(VARIANTS["scalearn"])
    params = methods_mod.trainable(net, "scalearn")
    paper = get_preset("tiny")
    assert methods_mod.param_groups(net, params, "scalearn", paper) == [{"params": params}]  # one rate (paper)
    groups = methods_mod.param_groups(net, params, "scalearn", paper.with_(omega_lr=0.5))
    assert groups[1] == {"params": [net.scalearn.omega.weight], "lr": 0.5}
    assert len(groups[0]["params"]) == len(params) - 1 and all(p is not net.scalearn.omega.weight
                                                               for p in groups[0]["params"])
    assert methods_mod.param_groups(net, params, "average", paper.with_(omega_lr=0.5)) == [{"params": params}]


def test_preset_refuses_a_non_positive_omega_rate():
    with pytest.raises(ValueError, match="omega_lr"):
        get_preset("tiny").with_(omega_lr=0.0)
    assert get_preset("paper").omega_rate() == get_preset("paper").transfer_lr  # the paper: one rate


def test_omega_snapshot_records_the_mean_and_how_far_units_moved():
    net = scalearn_model(VARIANTS["scalearn"])
    S = 3
    with torch.no_grad():
        net.scalearn.omega.weight.copy_(torch.randn_like(net.scalearn.omega.weight))
    snap = methods_mod.omega_snapshot(net)
    w = net.scalearn.omega.weight.detach()  # (L, S, d)
    for l in range(w.shape[0]):
        for i, s in enumerate("abc"):
            assert snap[f"omega/{l}/{s}"] == pytest.approx(w[l, i].mean().item(), abs=1e-6)
            assert snap[f"omega_abs/{l}/{s}"] == pytest.approx((w[l, i] - 2 / S).abs().mean().item(), abs=1e-6)


@pytest.mark.slow
def test_fixed_omega_trains_the_head_only_and_keeps_omega_at_two_over_s(data_dir, tmp_path):
    res = tr.transfer("mrpc", ["rte"], "fixed_omega", TINY, out=tmp_path / "fixed", progress=False,
                      data_dir=data_dir)
    m = res.metrics
    assert m["transfer_params"] == 0 and "omega_lr" not in m
    saved = load_omega(res.path)["omega"]
    assert torch.equal(saved, torch.full_like(saved, 2 / 2))  # rte + mrpc's own: S = 2, ω = 2/S exactly
    head = load_file(str(res.path / "head" / "model_head.safetensors"))
    assert m["trainable_params"] == sum(t.numel() for t in head.values())  # the head, nothing else


@pytest.mark.slow
def test_omega_lr_moves_omega_further_and_is_recorded_with_its_travel_bound(data_dir, tmp_path):
    runs = {}
    for name, preset in (("paper-rate", TINY), ("omega-x10", TINY.with_(omega_lr=10 * TINY.transfer_lr))):
        runs[name] = tr.transfer("mrpc", ["rte"], "scalearn_uniform_pp", preset, out=tmp_path / name,
                                 progress=False, data_dir=data_dir).metrics
    steps = runs["paper-rate"]["step_budget"]
    assert runs["paper-rate"]["omega_travel_bound"] == pytest.approx(TINY.transfer_lr * schedule_sum(steps))
    assert runs["omega-x10"]["omega_lr"] == pytest.approx(10 * TINY.transfer_lr)
    assert runs["omega-x10"]["omega_travel_bound"] == pytest.approx(10 * runs["paper-rate"]["omega_travel_bound"])
    moved = {}
    for name in runs:
        omega = load_omega(tmp_path / name)["omega"]
        moved[name] = (omega - 1.0).abs().max().item()  # S = 2: start 2/S = 1
        assert moved[name] <= runs[name]["omega_travel_bound"] + 1e-3  # Adam's bound holds
    assert moved["omega-x10"] > 3 * moved["paper-rate"]
