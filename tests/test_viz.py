"""viz: tables match the run folder, heatmaps show what the tables say, palettes and axes are the right kind."""
import csv
import json

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch

from conftest import tiny_config
from scalearn_lite import viz
from scalearn_lite.config import VARIANTS
from scalearn_lite.models import from_config
from scalearn_lite.scaling import AdapterWeights, ScaLearn, attach

SOURCES = ["sst2", "rte", "mrpc"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def write_run(folder, seed=0, layers=3, hidden=4, sources=SOURCES, vector=True, epochs=3):
    """A synthetic ScaLearn run folder: omega.json (with negative values), history.csv with ω snapshots, metrics."""
    g = np.random.default_rng(seed)
    per_unit = g.normal(0.3, 0.6, size=(layers, len(sources), hidden))  # (L, S, d), some entries < 0
    per_unit[0, 1] -= 1.5  # one clearly negative cell
    folder.mkdir(parents=True)
    (folder / "omega.json").write_text(json.dumps({
        "sources": sources, "num_layers": layers, "omega_shape": "vector" if vector else "scalar",
        "share_layers": False, "per_layer_source": per_unit.mean(-1).tolist(),
        "per_unit": per_unit.tolist() if vector else None}))
    with open(folder / "history.csv", "w", newline="") as fh:
        cols = ["epoch", "train_loss"] + [f"omega/{l}/{s}" for l in range(layers) for s in sources]
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        for e in range(epochs):
            w.writerow({"epoch": e, "train_loss": 1.0 / (e + 1),
                        **{f"omega/{l}/{s}": 2 / len(sources) + 0.1 * e * (i - 1)
                           for l in range(layers) for i, s in enumerate(sources)}})
    (folder / "metrics.json").write_text(json.dumps({"method": "scalearn", "test_metric": 0.7}))
    return folder, per_unit


def test_omega_frame_and_spread_read_the_run_folder(tmp_path):
    folder, per_unit = write_run(tmp_path / "run")
    frame = viz.omega_frame(folder)
    assert list(frame.index) == ["layer 0", "layer 1", "layer 2"]
    assert list(frame.columns) == SOURCES  # source order is the meaning of ω's rows
    np.testing.assert_allclose(frame.to_numpy(), per_unit.mean(-1))
    np.testing.assert_allclose(viz.omega_spread(folder).to_numpy(), per_unit.std(-1))
    assert viz.omega_frame(folder / "omega.json").equals(frame)


def test_scalar_variant_has_zero_spread(tmp_path):
    folder, _ = write_run(tmp_path / "run", vector=False)
    assert (viz.omega_spread(folder).to_numpy() == 0).all()


def test_heatmap_png_labels_and_annotations_match_the_frame(tmp_path):
    folder, _ = write_run(tmp_path / "run")
    frame = viz.omega_frame(folder)
    ax = viz.omega_heatmap(frame, title="ω", save=tmp_path / "omega.png")
    assert (tmp_path / "omega.png").read_bytes()[:8] == PNG_MAGIC
    assert [t.get_text() for t in ax.get_xticklabels()] == SOURCES
    assert [t.get_text() for t in ax.get_yticklabels()] == list(frame.index)
    annotated = [t.get_text() for t in ax.texts]
    assert annotated == [f"{v:.2f}" for v in frame.to_numpy().ravel()]  # row-major, one per cell
    assert any(float(s) < 0 for s in annotated)


def test_heatmap_palette_is_diverging_and_centred_at_zero_on_request(tmp_path):
    folder, _ = write_run(tmp_path / "run")
    frame = viz.omega_frame(folder)
    mesh = viz.omega_heatmap(frame, center=0.0).collections[0]
    vmax = np.abs(frame.to_numpy()).max()
    assert mesh.norm.vmin == pytest.approx(-vmax) and mesh.norm.vmax == pytest.approx(vmax)
    assert mesh.norm(0.0) == pytest.approx(0.5)
    neutral, low, high = (np.array(mesh.cmap(mesh.norm(v))[:3]) for v in (0.0, -vmax, vmax))
    assert neutral.min() > 0.85  # ω = 0 is (near) white
    assert low[2] > low[0] and high[0] > high[2]  # negative blue, positive red


def test_heatmap_is_centred_at_the_initial_value_and_init_noise_stays_near_white():
    """Default: white = 2/S (unchanged by training); a frame that moved by init noise only (1e-3) is not stretched
    over the whole palette: the range is at least ±10% of 2/S."""
    S, c = 5, 2 / 5
    still = pd.DataFrame(c + np.linspace(-1e-3, 1e-3, 2 * S).reshape(2, S), columns=list("abcde"))
    mesh = viz.omega_heatmap(still).collections[0]
    assert mesh.norm.vmin == pytest.approx(c - 0.1 * c) and mesh.norm.vmax == pytest.approx(c + 0.1 * c)
    assert mesh.norm(c) == pytest.approx(0.5)
    assert min(np.array(mesh.cmap(mesh.norm(v))[:3]).min() for v in still.to_numpy().ravel()) > 0.85  # near white
    moved = still.copy()
    moved.iloc[0, 0] = c + 0.2  # a real move sets the range
    mesh = viz.omega_heatmap(moved).collections[0]
    assert mesh.norm.vmax == pytest.approx(c + 0.2) and mesh.norm.vmin == pytest.approx(c - 0.2)


def test_svg_save(tmp_path):
    folder, _ = write_run(tmp_path / "run")
    viz.omega_heatmap(viz.omega_frame(folder), save=tmp_path / "omega.svg")
    assert (tmp_path / "omega.svg").read_text().lstrip().startswith(("<?xml", "<svg"))


def test_variant_heatmaps_share_one_scale(tmp_path):
    runs = {v: write_run(tmp_path / v, seed=i)[0] for i, v in enumerate(VARIANTS)}
    fig = viz.variant_heatmaps(runs, save=tmp_path / "variants.png", center=0.0)
    meshes = [ax.collections[0] for ax in fig.axes if ax.get_title()]  # the colour bar's axes have no title
    assert len(meshes) == 4
    vmax = max(np.abs(viz.omega_frame(r).to_numpy()).max() for r in runs.values())
    assert all(m.norm.vmax == pytest.approx(vmax) and m.norm.vmin == pytest.approx(-vmax) for m in meshes)
    assert [ax.get_title() for ax in fig.axes[:4]] == ["ScaLearn", "ScaLearnUniform", "ScaLearn++", "ScaLearnUniform++"]


def test_omega_over_training_draws_one_line_per_source(tmp_path):
    folder, _ = write_run(tmp_path / "run")
    ax = viz.omega_over_training(folder)
    labels = [l.get_label() for l in ax.get_lines()]
    assert labels[:3] == SOURCES and "init 2/S" in labels
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [2 / 3, 2 / 3 - 0.1, 2 / 3 - 0.2])
    single = viz.omega_over_training(folder, layer=1, ax=plt.subplots()[1])
    assert len([l for l in single.get_lines() if l.get_label() in SOURCES]) == 3


def test_target_source_frame_aligns_sources_and_outlines_own(tmp_path):
    a, _ = write_run(tmp_path / "a", sources=["sst2", "rte", "mrpc"])
    b, _ = write_run(tmp_path / "b", seed=1, sources=["sst2", "mrpc", "rte"])
    frame = viz.target_source_frame({"mrpc": a, "rte": b}, columns=["sst2", "rte", "mrpc"])
    assert list(frame.columns) == ["sst2", "rte", "mrpc"] and list(frame.index) == ["mrpc", "rte"]
    assert frame.loc["rte", "mrpc"] == pytest.approx(viz.omega_frame(b)["mrpc"].mean())
    ax = viz.target_source_matrix(frame)
    assert len(ax.patches) == 2  # each target's own adapter outlined
    mesh = ax.collections[0]
    assert mesh.norm(2 / 3) == pytest.approx(0.5)  # S = 3 in every row: white = the start value 2/3
    assert [t.get_text() for t in ax.texts] == [f"{v:.2f}" for v in frame.to_numpy().ravel()]


def test_target_source_matrix_colours_each_row_around_its_own_start_value():
    """Rows with different numbers of sources start at different 2/S: the colours show ω − 2/S, the text ω."""
    frame = pd.DataFrame({"a": [0.5, 0.7], "b": [0.5, np.nan], "c": [0.5, 0.9]}, index=["t1", "t2"])
    ax = viz.target_source_matrix(frame)
    mesh = ax.collections[0]
    shown = np.ma.filled(mesh.get_array(), np.nan).reshape(2, 3)
    np.testing.assert_allclose(shown, frame.to_numpy() - np.array([[2 / 3], [1.0]]), atol=1e-12)
    assert mesh.norm(0.0) == pytest.approx(0.5)
    assert [t.get_text() for t in ax.texts] == ["0.50", "0.50", "0.50", "0.70", "0.90"]


def test_efficiency_plot_uses_a_log_x_axis():
    results = pd.DataFrame({
        "name": ["ScaLearn", "ScaLearn", "ScaLearnUniform++", "AdapterFusion", "Head only (ω=0)"],
        "transfer_params": [73728, 73728, 8, 21252096, 0], "test_metric": [0.8, 0.82, 0.79, 0.78, 0.6],
        "metric": "accuracy"})
    ax = viz.efficiency_plot(results)
    assert ax.get_xscale() == "log"
    points = [c for c in ax.containers]
    assert len(points) == 4  # one point (error bar) per method
    xs = sorted(float(c.lines[0].get_xdata()[0]) for c in points)
    assert xs == [1.0, 8.0, 73728.0, 21252096.0]  # zero-parameter methods sit at x = 1
    assert "accuracy" in ax.get_ylabel()


def test_few_shot_plot_has_one_series_per_method():
    results = pd.DataFrame({"name": ["A", "A", "B", "B"] * 2, "k_shot": [4, 4, 4, 4, 16, 16, 16, 16],
                            "seed": [0, 1] * 4, "test_metric": [0.5, 0.6, 0.55, 0.5, 0.7, 0.72, 0.6, 0.61]})
    ax = viz.few_shot_plot(results)
    assert ax.get_xscale() == "log" and len(ax.containers) == 2


def test_probe_line_and_grid():
    line = pd.DataFrame({"source": ["a"] * 3 + ["b"] * 3, "omega": [0, 0.5, 1] * 2,
                         "validation": np.linspace(0.5, 0.8, 6), "test": np.linspace(0.5, 0.8, 6)})
    assert len(viz.probe_line(line).get_lines()) == 2
    vals = [0.0, 0.1, 0.5, 1.0]
    grid = pd.DataFrame([{"omega_1": a, "omega_2": b, "validation": a + b, "test": -abs(a + b - 1.5)}
                         for a in vals for b in vals])
    ax = viz.probe_grid(grid, names=("own", "other"))
    dashed = [l for l in ax.get_lines() if l.get_linestyle() == "--"][0]
    # map cell coordinates back to ω: every point of the dashed line has ω1 + ω2 = 1
    w2 = np.interp(dashed.get_xdata(), np.arange(4) + 0.5, vals)
    w1 = np.interp(dashed.get_ydata(), np.arange(4) + 0.5, vals)
    np.testing.assert_allclose(w1 + w2, 1.0, atol=1e-9)
    assert ax.patches[-1].get_xy() == (3, 3)  # best on validation (ω1 + ω2 largest): ω1 = ω2 = 1.0
    ax = viz.probe_grid(grid, ax=plt.subplots()[1], select="test")
    assert ax.patches[-1].get_xy() == (3, 2)  # best on test: ω2 = 1.0 (column 3), ω1 = 0.5 (row 2)


def _random_scalearn_model(hidden=32, layers=2, S=3):
    torch.manual_seed(0)
    model = from_config(tiny_config("bert", hidden=hidden, layers=layers))
    r = hidden // 16
    bank = [[AdapterWeights(torch.randn(r, hidden), torch.randn(r), torch.randn(hidden, r), torch.randn(hidden))
             for _ in range(S)] for _ in range(layers)]
    sl = attach(model, ScaLearn(VARIANTS["scalearn"], SOURCES[:S], bank, hidden))
    with torch.no_grad():
        sl.omega.weight.normal_(0.0, 1.0)
    return model


def test_omega_frame_from_a_model_is_the_mean_over_units():
    model = _random_scalearn_model()
    frame = viz.omega_frame(model)
    omega = model.scalearn.omega.weight.detach()  # (L, S, d)
    np.testing.assert_allclose(frame.to_numpy(), omega.mean(-1).numpy(), rtol=1e-6)
    np.testing.assert_allclose(viz.omega_spread(model.scalearn).to_numpy(), omega.std(-1, unbiased=False).numpy(),
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
    frame = viz.fusion_attention_frame(model, [{"input_ids": ids, "attention_mask": mask}])
    assert list(frame.columns) == ["a", "b", "c"] and list(frame.index) == ["layer 0", "layer 1"]
    np.testing.assert_allclose(frame.sum(axis=1), 1.0, rtol=1e-5)  # a softmax over sources, token by token
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, output_adapter_fusion_attentions=True)
    att = out["adapter_fusion_attentions"]["a,b,c"][0]["output_adapter"]  # (B, T, S)
    real = np.concatenate([att[0], att[1, :4]])  # padding of row 1 excluded
    np.testing.assert_allclose(frame.iloc[0].to_numpy(), real.mean(0), rtol=1e-5)
    fig = viz.compare_fusion_scalearn(frame, frame - 0.3)
    assert [a.get_title() for a in fig.axes if a.get_title()] == ["AdapterFusion attention", "ScaLearn ω"]


def test_widgets_build_and_update_without_a_frontend(tmp_path):
    pytest.importorskip("ipywidgets")
    calls = []

    def scorer(values):
        calls.append(list(values))
        return sum(values) / 10

    box = viz.omega_sliders(scorer, ["a", "b"], start=[0.2, 0.3], metric="accuracy")
    assert calls[-1] == [0.2, 0.3] and "accuracy = 5.00" in box.label.value
    box.sliders[0].value = 0.7  # what a user's drag does
    assert calls[-1] == [0.7, 0.3] and "accuracy = 10.00" in box.label.value
    runs = {"mrpc": {v: write_run(tmp_path / v, seed=i)[0] for i, v in enumerate(["scalearn", "scalearn_pp"])}}
    browser = viz.run_browser(runs)
    assert browser is not None and browser.children[0].children[1].options == ("scalearn", "scalearn_pp")


def test_variant_heatmaps_are_centred_at_the_initial_value_so_white_means_unchanged(tmp_path):
    runs = {v: write_run(tmp_path / v, seed=i)[0] for i, v in enumerate(VARIANTS)}
    fig = viz.variant_heatmaps(runs)  # default: centred at 2/S
    meshes = [ax.collections[0] for ax in fig.axes if ax.get_title()]
    init = 2 / len(SOURCES)
    spread = max(np.abs(viz.omega_frame(r).to_numpy() - init).max() for r in runs.values())
    for m in meshes:
        assert m.norm.vmin == pytest.approx(init - spread) and m.norm.vmax == pytest.approx(init + spread)
        assert m.norm(init) == pytest.approx(0.5)
        assert np.array(m.cmap(m.norm(init))[:3]).min() > 0.85  # ω = 2/S is (near) white
    first = viz.omega_frame(runs["scalearn"])
    assert [t.get_text() for t in fig.axes[0].texts] == [f"{v:.2f}" for v in first.to_numpy().ravel()]


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
    model = _random_scalearn_model().eval()
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, 100, (3, 7), generator=g)
    mask = torch.tensor([[1] * 7, [1] * 5 + [0] * 2, [1] * 3 + [0] * 4])
    batch = {"input_ids": ids, "attention_mask": mask}
    frame = viz.contribution_frame(model, [batch])
    assert list(frame.columns) == SOURCES and frame.shape == (2, 3)
    with torch.no_grad():
        np.testing.assert_allclose(frame.to_numpy(), _plain_torch_contributions(model, batch), rtol=1e-4)
    # two batches = one batch with all the tokens: a token mean, not a mean of batch means
    halves = viz.contribution_frame(model, [{k: v[:1] for k, v in batch.items()}, {k: v[1:] for k, v in batch.items()}])
    np.testing.assert_allclose(halves.to_numpy(), frame.to_numpy(), rtol=1e-4)
    ax = viz.contribution_heatmap(frame)
    assert [t.get_text() for t in ax.texts] == [f"{v:.2f}" for v in frame.to_numpy().ravel()]
    assert ax.collections[0].norm.vmin == 0.0
    # a multiple-choice batch (B, C, T), as COPA's loader gives it: every choice's sequence counts
    choices = viz.contribution_frame(model, [{k: v.view(1, 3, 7) for k, v in batch.items()}])
    np.testing.assert_allclose(choices.to_numpy(), frame.to_numpy(), rtol=1e-4)


def test_variant_training_plots_each_variants_history(tmp_path):
    runs = {v: write_run(tmp_path / v, seed=i)[0] for i, v in enumerate(VARIANTS)}
    fig = viz.variant_training(runs)
    hist = pd.read_csv(runs["scalearn"] / "history.csv")
    for i, s in enumerate(SOURCES):
        cols = [f"omega/{l}/{s}" for l in range(3)]
        np.testing.assert_allclose(fig.axes[0].get_lines()[i].get_ydata(), hist[cols].to_numpy().mean(1))


def test_omega_change_and_stats_match_a_plain_torch_recomputation():
    """How far ω moved, recomputed in plain torch: signed mean and mean |ω − 2/S| over hidden units, min, max."""
    model = _random_scalearn_model()
    omega = model.scalearn.omega.weight.detach().double()  # (L, S, d)
    delta = omega - 2 / omega.shape[1]
    change = viz.omega_change(model)
    np.testing.assert_allclose(change["mean"].to_numpy(), delta.mean(-1).numpy(), rtol=1e-6)
    np.testing.assert_allclose(change["abs"].to_numpy(), delta.abs().mean(-1).numpy(), rtol=1e-6)
    assert list(change["abs"].columns) == SOURCES
    stats = viz.omega_stats(model)
    assert list(stats.columns) == ["layer", "source", "mean", "min", "max", "mean_abs_change"]
    assert len(stats) == omega.shape[0] * omega.shape[1]
    row = stats[(stats.layer == 1) & (stats.source == SOURCES[2])].iloc[0]
    assert row["min"] == pytest.approx(omega[1, 2].min().item(), rel=1e-6)
    assert row["max"] == pytest.approx(omega[1, 2].max().item(), rel=1e-6)
    assert row["mean_abs_change"] == pytest.approx(delta[1, 2].abs().mean().item(), rel=1e-6)


def test_vector_omega_can_move_per_unit_while_its_mean_stays_at_the_start():
    """The reason for the second panel: ± moves that cancel leave the mean (and a heatmap of it) white."""
    model = _random_scalearn_model()
    w = model.scalearn.omega.weight
    with torch.no_grad():
        w.fill_(2 / 3)
        w[..., 0::2] += 0.4
        w[..., 1::2] -= 0.4  # hidden size even: the mean stays at 2/S
    change = viz.omega_change(model)
    np.testing.assert_allclose(change["mean"].to_numpy(), 0.0, atol=1e-6)
    np.testing.assert_allclose(change["abs"].to_numpy(), 0.4, rtol=1e-5)
    fig = viz.movement_heatmaps({"scalearn": model})
    titled = {ax.get_title(): ax for ax in fig.axes}
    mean_ax, abs_ax = titled["ScaLearn\nmean of ω − 2/S"], titled["mean |ω − 2/S| over units"]
    assert {t.get_text() for t in mean_ax.texts} <= {"0.00", "-0.00"}
    assert {t.get_text() for t in abs_ax.texts} == {"0.40"}


def test_scalar_omega_change_is_the_plain_difference(tmp_path):
    folder, _ = write_run(tmp_path / "run", vector=False)
    rec = json.loads((folder / "omega.json").read_text())
    delta = np.asarray(rec["per_layer_source"]) - 2 / len(SOURCES)
    change = viz.omega_change(folder)
    np.testing.assert_allclose(change["mean"].to_numpy(), delta)
    np.testing.assert_allclose(change["abs"].to_numpy(), np.abs(delta))
    assert (viz.omega_stats(folder)["min"] == viz.omega_stats(folder)["max"]).all()


def test_omega_over_training_draws_how_far_omega_moved(tmp_path):
    folder, _ = write_run(tmp_path / "run")
    hist = pd.read_csv(folder / "history.csv")
    for l in range(3):
        for s in SOURCES:
            hist[f"omega_abs/{l}/{s}"] = (hist[f"omega/{l}/{s}"] - 2 / 3).abs()
    hist.to_csv(folder / "history.csv", index=False)
    ax = viz.omega_over_training(folder, what="abs")
    cols = [f"omega_abs/{l}/{SOURCES[1]}" for l in range(3)]
    np.testing.assert_allclose(ax.get_lines()[1].get_ydata(), hist[cols].to_numpy().mean(1))
    with pytest.raises(ValueError, match="what"):
        viz.omega_over_training(folder, what="median")
    old, _ = write_run(tmp_path / "old")  # written before the omega_abs columns existed
    with pytest.raises(ValueError, match="omega_abs"):
        viz.omega_over_training(old, what="abs")
