"""viz: heatmaps show what the tables say, palettes and axes are the right kind, figures save."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch

from omega_runs import SOURCES, random_scalearn_model, write_run
from scalearn_lite import analysis, viz
from scalearn_lite.config import VARIANTS

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_heatmap_png_labels_and_annotations_match_the_frame(tmp_path):
    folder, _ = write_run(tmp_path / "run")
    frame = analysis.omega_frame(folder)
    ax = viz.omega_heatmap(frame, title="ω", save=tmp_path / "omega.png")
    assert (tmp_path / "omega.png").read_bytes()[:8] == PNG_MAGIC
    assert [t.get_text() for t in ax.get_xticklabels()] == SOURCES
    assert [t.get_text() for t in ax.get_yticklabels()] == list(frame.index)
    annotated = [t.get_text() for t in ax.texts]
    assert annotated == [f"{v:.2f}" for v in frame.to_numpy().ravel()]  # row-major, one per cell
    assert any(float(s) < 0 for s in annotated)


def test_heatmap_palette_is_diverging_and_centred_at_zero_on_request(tmp_path):
    folder, _ = write_run(tmp_path / "run")
    frame = analysis.omega_frame(folder)
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
    viz.omega_heatmap(analysis.omega_frame(folder), save=tmp_path / "omega.svg")
    assert (tmp_path / "omega.svg").read_text().lstrip().startswith(("<?xml", "<svg"))


def test_variant_heatmaps_share_one_scale(tmp_path):
    runs = {v: write_run(tmp_path / v, seed=i)[0] for i, v in enumerate(VARIANTS)}
    fig = viz.variant_heatmaps(runs, save=tmp_path / "variants.png", center=0.0)
    meshes = [ax.collections[0] for ax in fig.axes if ax.get_title()]  # the colour bar's axes have no title
    assert len(meshes) == 4
    vmax = max(np.abs(analysis.omega_frame(r).to_numpy()).max() for r in runs.values())
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
    frame = analysis.target_source_frame({"mrpc": a, "rte": b}, columns=["sst2", "rte", "mrpc"])
    assert list(frame.columns) == ["sst2", "rte", "mrpc"] and list(frame.index) == ["mrpc", "rte"]
    assert frame.loc["rte", "mrpc"] == pytest.approx(analysis.omega_frame(b)["mrpc"].mean())
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


def test_variant_heatmaps_are_centred_at_the_initial_value_so_white_means_unchanged(tmp_path):
    runs = {v: write_run(tmp_path / v, seed=i)[0] for i, v in enumerate(VARIANTS)}
    fig = viz.variant_heatmaps(runs)  # default: centred at 2/S
    meshes = [ax.collections[0] for ax in fig.axes if ax.get_title()]
    init = 2 / len(SOURCES)
    spread = max(np.abs(analysis.omega_frame(r).to_numpy() - init).max() for r in runs.values())
    for m in meshes:
        assert m.norm.vmin == pytest.approx(init - spread) and m.norm.vmax == pytest.approx(init + spread)
        assert m.norm(init) == pytest.approx(0.5)
        assert np.array(m.cmap(m.norm(init))[:3]).min() > 0.85  # ω = 2/S is (near) white
    first = analysis.omega_frame(runs["scalearn"])
    assert [t.get_text() for t in fig.axes[0].texts] == [f"{v:.2f}" for v in first.to_numpy().ravel()]


def test_variant_training_plots_each_variants_history(tmp_path):
    runs = {v: write_run(tmp_path / v, seed=i)[0] for i, v in enumerate(VARIANTS)}
    fig = viz.variant_training(runs)
    hist = pd.read_csv(runs["scalearn"] / "history.csv")
    for i, s in enumerate(SOURCES):
        cols = [f"omega/{l}/{s}" for l in range(3)]
        np.testing.assert_allclose(fig.axes[0].get_lines()[i].get_ydata(), hist[cols].to_numpy().mean(1))


def test_vector_omega_can_move_per_unit_while_its_mean_stays_at_the_start():
    """The reason for the second panel: ± moves that cancel leave the mean (and a heatmap of it) white."""
    model = random_scalearn_model()
    w = model.scalearn.omega.weight
    with torch.no_grad():
        w.fill_(2 / 3)
        w[..., 0::2] += 0.4
        w[..., 1::2] -= 0.4  # hidden size even: the mean stays at 2/S
    change = analysis.omega_change(model)
    np.testing.assert_allclose(change["mean"].to_numpy(), 0.0, atol=1e-6)
    np.testing.assert_allclose(change["abs"].to_numpy(), 0.4, rtol=1e-5)
    fig = viz.movement_heatmaps({"scalearn": model})
    titled = {ax.get_title(): ax for ax in fig.axes}
    mean_ax, abs_ax = titled["ScaLearn\nmean of ω − 2/S"], titled["mean |ω − 2/S| over units"]
    assert {t.get_text() for t in mean_ax.texts} <= {"0.00", "-0.00"}
    assert {t.get_text() for t in abs_ax.texts} == {"0.40"}


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
