"""analysis: ω tables match the run folder and the model, and what runs a model (contributions, fusion attention, the
ω scorer) equals a plain torch recomputation."""
import json

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch

from conftest import tiny_config
from omega_runs import SOURCES, random_scalearn_model, write_run
from scalearn_lite import analysis, viz
from scalearn_lite.models import from_config


def test_omega_frame_and_spread_read_the_run_folder(tmp_path):
    folder, per_unit = write_run(tmp_path / "run")
    frame = analysis.omega_frame(folder)
    assert list(frame.index) == ["layer 0", "layer 1", "layer 2"]
    assert list(frame.columns) == SOURCES  # source order is the meaning of ω's rows
    np.testing.assert_allclose(frame.to_numpy(), per_unit.mean(-1))
    np.testing.assert_allclose(analysis.omega_spread(folder).to_numpy(), per_unit.std(-1))
    assert analysis.omega_frame(folder / "omega.json").equals(frame)


def test_scalar_variant_has_zero_spread(tmp_path):
    folder, _ = write_run(tmp_path / "run", vector=False)
    assert (analysis.omega_spread(folder).to_numpy() == 0).all()


def test_omega_frame_from_a_model_is_the_mean_over_units():
    model = random_scalearn_model()
    frame = analysis.omega_frame(model)
    omega = model.scalearn.omega.weight.detach()  # (L, S, d)
    np.testing.assert_allclose(frame.to_numpy(), omega.mean(-1).numpy(), rtol=1e-6)
    np.testing.assert_allclose(analysis.omega_spread(model.scalearn).to_numpy(), omega.std(-1, unbiased=False).numpy(),
                               rtol=1e-5)


def test_fusion_attention_frame_averages_real_tokens_per_layer():
    from adapters.composition import Fuse

    torch.manual_seed(0)
    model = from_config(tiny_config("bert"))
    for name in ("a", "b", "c"):
        model.add_adapter(name, config="seq_bn")
    model.add_adapter_fusion(Fuse("a", "b", "c"), "dynamic")
    model.set_active_adapters(Fuse("a", "b", "c"))
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "adapter" in n:
                p.normal_(0, 0.5)
    model.eval()
    ids = torch.randint(5, 120, (2, 7))
    mask = torch.ones_like(ids)
    mask[1, 4:] = 0
    frame = analysis.fusion_attention_frame(model, [{"input_ids": ids, "attention_mask": mask}])
    assert list(frame.columns) == ["a", "b", "c"] and list(frame.index) == ["layer 0", "layer 1"]
    np.testing.assert_allclose(frame.sum(axis=1), 1.0, rtol=1e-5)  # a softmax over sources, token by token
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, output_adapter_fusion_attentions=True)
    att = out["adapter_fusion_attentions"]["a,b,c"][0]["output_adapter"]  # (B, T, S)
    real = np.concatenate([att[0], att[1, :4]])  # padding of row 1 excluded
    np.testing.assert_allclose(frame.iloc[0].to_numpy(), real.mean(0), rtol=1e-5)
    fig = viz.compare_fusion_scalearn(frame, frame - 0.3)
    assert [a.get_title() for a in fig.axes if a.get_title()] == ["AdapterFusion attention", "ScaLearn ω"]


def _plain_torch_contributions(model, batch):
    """‖ω_i ⊙ A_i(h)‖ / ‖f + x‖ per layer × source, recomputed by hand from each layer's raw output-block inputs
    (the FFN intermediate and x, captured by pre-hooks) and the bank's stacked weights."""
    from scalearn_lite.models import encoder_layers

    sl, mask = model.scalearn, batch["attention_mask"].float()
    inputs, handles = {}, []
    for l, layer in enumerate(encoder_layers(model)):
        handles.append(layer.output.register_forward_pre_hook(lambda m, args, l=l: inputs.__setitem__(l, args)))
    model.base_model(**batch)
    for h in handles:
        h.remove()
    out = np.zeros((len(sl.banks), len(sl.sources)))
    for l, layer in enumerate(encoder_layers(model)):
        inter, x = inputs[l]
        o = layer.output
        residual = inter @ o.dense.weight.T + o.dense.bias + x  # f + x
        h = torch.nn.functional.layer_norm(residual, (residual.shape[-1],), o.LayerNorm.weight, o.LayerNorm.bias,
                                           o.LayerNorm.eps)
        omega, bank = sl.omega.weight[l], sl.banks[l]  # (S, d)
        for i in range(len(sl.sources)):
            rows = slice(sum(bank.ranks[:i]), sum(bank.ranks[: i + 1]))
            a = torch.relu(h @ bank.w_down[:, rows] + bank.b_down[rows]) @ bank.w_up[rows] + bank.b_up[i]
            ratio = (omega[i] * a).norm(dim=-1) / residual.norm(dim=-1)  # (B, T)
            out[l, i] = float((ratio * mask).sum() / mask.sum())
    return out


def test_contribution_frame_equals_a_plain_torch_recomputation():
    model = random_scalearn_model().eval()
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, 100, (3, 7), generator=g)
    mask = torch.tensor([[1] * 7, [1] * 5 + [0] * 2, [1] * 3 + [0] * 4])
    batch = {"input_ids": ids, "attention_mask": mask}
    frame = analysis.contribution_frame(model, [batch])
    assert list(frame.columns) == SOURCES and frame.shape == (2, 3)
    with torch.no_grad():
        np.testing.assert_allclose(frame.to_numpy(), _plain_torch_contributions(model, batch), rtol=1e-4)
    # two batches = one batch with all the tokens: a token mean, not a mean of batch means
    halves = analysis.contribution_frame(model, [{k: v[:1] for k, v in batch.items()}, {k: v[1:] for k, v in batch.items()}])
    np.testing.assert_allclose(halves.to_numpy(), frame.to_numpy(), rtol=1e-4)
    ax = viz.contribution_heatmap(frame)
    assert [t.get_text() for t in ax.texts] == [f"{v:.2f}" for v in frame.to_numpy().ravel()]
    assert ax.collections[0].norm.vmin == 0.0
    # a multiple-choice batch (B, C, T), as COPA's loader gives it: every choice's sequence counts
    choices = analysis.contribution_frame(model, [{k: v.view(1, 3, 7) for k, v in batch.items()}])
    np.testing.assert_allclose(choices.to_numpy(), frame.to_numpy(), rtol=1e-4)


def test_omega_change_and_stats_match_a_plain_torch_recomputation():
    """How far ω moved, recomputed in plain torch: signed mean and mean |ω − 2/S| over hidden units, min, max."""
    model = random_scalearn_model()
    omega = model.scalearn.omega.weight.detach().double()  # (L, S, d)
    delta = omega - 2 / omega.shape[1]
    change = analysis.omega_change(model)
    np.testing.assert_allclose(change["mean"].to_numpy(), delta.mean(-1).numpy(), rtol=1e-6)
    np.testing.assert_allclose(change["abs"].to_numpy(), delta.abs().mean(-1).numpy(), rtol=1e-6)
    assert list(change["abs"].columns) == SOURCES
    stats = analysis.omega_stats(model)
    assert list(stats.columns) == ["layer", "source", "mean", "min", "max", "mean_abs_change"]
    assert len(stats) == omega.shape[0] * omega.shape[1]
    row = stats[(stats.layer == 1) & (stats.source == SOURCES[2])].iloc[0]
    assert row["min"] == pytest.approx(omega[1, 2].min().item(), rel=1e-6)
    assert row["max"] == pytest.approx(omega[1, 2].max().item(), rel=1e-6)
    assert row["mean_abs_change"] == pytest.approx(delta[1, 2].abs().mean().item(), rel=1e-6)


def test_scalar_omega_change_is_the_plain_difference(tmp_path):
    folder, _ = write_run(tmp_path / "run", vector=False)
    rec = json.loads((folder / "omega.json").read_text())
    delta = np.asarray(rec["per_layer_source"]) - 2 / len(SOURCES)
    change = analysis.omega_change(folder)
    np.testing.assert_allclose(change["mean"].to_numpy(), delta)
    np.testing.assert_allclose(change["abs"].to_numpy(), np.abs(delta))
    assert (analysis.omega_stats(folder)["min"] == analysis.omega_stats(folder)["max"]).all()


def test_omega_scorer_table_sets_omega_to_the_start_two_over_s_beside_one_over_s(monkeypatch):
    """The set-ω-by-hand table of notebook 04 carries ω's start value 2/S (the fixed-ω control) next to 1/S."""
    seen = {}

    def fake_score(self, omega=None):
        seen[None if omega is None else tuple(omega)] = True
        return -1.0 if omega is None else sum(omega) / 100  # the table shows 100 × the score
    monkeypatch.setattr(analysis.OmegaScorer, "__call__", fake_score)
    scorer = analysis.OmegaScorer.__new__(analysis.OmegaScorer)
    scorer.sources, scorer.metric = ["sst2", "qnli", "mrpc", "stsb"], "pearson"
    table = scorer.table()["pearson"]
    assert table["uniform 2/S (the start)"] == pytest.approx(2.0) and (0.5,) * 4 in seen  # ω_i = 2/S = 0.5
    assert table["uniform 1/S"] == pytest.approx(1.0) and table["zero (head only)"] == 0.0
    assert table["only stsb (one-hot)"] == pytest.approx(1.0) and table["learned ω"] == -100.0
