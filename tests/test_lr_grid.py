"""`lr-grid`: every method's rate picked the same way (paper rate × one grid, lowest validation loss), and the
cpu preset holds the rates its committed grid chose."""
import json
from pathlib import Path

import pytest

from scalearn_lite.config import PRESETS
from scalearn_lite.files import read_json
from scalearn_lite.lr_grid import GROUPS, format_table, lr_grid

ROOT = Path(__file__).resolve().parents[1]


def test_grid_keeps_the_lowest_validation_loss_and_tunes_transfer_on_the_chosen_sources(data_dir, tmp_path):
    res = lr_grid(PRESETS["tiny"], ["mrpc"], ["sst2"], groups=["scalearn", "target"], factors=[1, 10],
                  data_dir=data_dir, out=tmp_path, progress=False)
    groups = res["groups"]
    assert list(groups) == ["target", "scalearn"]  # stage 1 first, whatever the order asked
    for name, g in groups.items():
        paper = getattr(PRESETS["paper"], g["field"])
        assert [r["lr"] for r in g["rows"]] == pytest.approx([paper, 10 * paper])
        tasks = ["mrpc"]  # the target's own adapter and the transfer are scored on the targets
        assert all(sorted(r["runs"]) == tasks for r in g["rows"])
        scores = [sum(r["runs"][t]["validation_loss"] / min(x["runs"][t]["validation_loss"] for x in g["rows"])
                      for t in tasks) / len(tasks) for r in g["rows"]]
        assert len(set(scores)) == 2  # the rate changed the runs
        assert [r["relative_loss"] for r in g["rows"]] == pytest.approx(scores)
        assert g["chosen_lr"] == g["rows"][scores.index(min(scores))]["lr"]
        assert getattr(res["preset"], g["field"]) == g["chosen_lr"]
    for row in groups["scalearn"]["rows"]:  # the transfer runs were built on sources trained at the chosen rate
        config = read_json(tmp_path / "scalearn" / f"x{row['factor']:g}" / "mrpc" / "config.json")
        assert config["preset"]["target_lr"] == groups["target"]["chosen_lr"]  # the own adapter at the chosen rate
        assert config["preset"]["transfer_lr"] == row["lr"]
    table = format_table(groups)
    assert table.count("**chosen**") == 2 and "| target | ×10 |" in table


@pytest.mark.slow
def test_omega_group_tunes_omegas_own_rate_on_all_four_variants_with_the_head_at_the_transfer_rate(data_dir, tmp_path):
    res = lr_grid(PRESETS["tiny"], ["mrpc"], ["sst2"], groups=["omega"], factors=[1, 10], data_dir=data_dir,
                  out=tmp_path, progress=False)
    g = res["groups"]["omega"]
    assert g["field"] == "omega_lr" and g["paper_lr"] == PRESETS["paper"].transfer_lr  # the paper: one rate
    variants = ["scalearn", "scalearn_uniform", "scalearn_pp", "scalearn_uniform_pp"]
    assert all(sorted(r["runs"]) == sorted(f"mrpc:{v}" for v in variants) for r in g["rows"])
    assert res["preset"].omega_lr == g["chosen_lr"] and res["preset"].transfer_lr == PRESETS["tiny"].transfer_lr
    for row in g["rows"]:
        for v in variants:
            config = read_json(tmp_path / "omega" / f"x{row['factor']:g}" / f"mrpc-{v}" / "config.json")
            assert config["method"] == v and config["preset"]["omega_lr"] == row["lr"]
            assert config["preset"]["transfer_lr"] == PRESETS["tiny"].transfer_lr  # the head keeps its rate
    assert "| omega | ×10 |" in format_table(res["groups"])


def test_unknown_group_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown group"):
        lr_grid(PRESETS["tiny"], ["mrpc"], ["sst2"], groups=["ω"], out=tmp_path)


@pytest.mark.parametrize("preset,name", [("cpu", "lr_grid_cpu"), ("demo", "lr_grid_demo"),
                                         ("demo", "lr_grid_demo_omega")])
def test_a_preset_uses_the_rates_its_grid_chose(preset, name):
    path = ROOT / "benchmarks" / f"{name}.json"
    if not path.is_file():
        pytest.skip(f"{path} not found: run `scalearn-lite lr-grid --preset {preset} --json {path.relative_to(ROOT)}`")
    grid = json.loads(path.read_text())
    assert grid["preset"] == preset
    assert set(grid["chosen"]) <= {field for field, _ in GROUPS.values()}
    for field, lr in grid["chosen"].items():
        assert getattr(PRESETS[preset], field) == pytest.approx(lr), field
