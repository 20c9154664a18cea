"""The notebooks' helpers (scalearn_lite/notebook.py): mode detection, setup, each mode's target and sources, full
mode's preset and its stand-ins, and one folder for runs and the stage-1 cache on Colab (kept across notebooks on
Google Drive). Device placement: tests/test_device.py."""
import json
import sys
import types
from pathlib import Path

import pytest

from scalearn_lite import notebook
from scalearn_lite import data as data_mod
from scalearn_lite.config import get_preset
from standins import labels_of

ROOT = Path(__file__).resolve().parents[1]


def test_mode_detection(monkeypatch):
    for name in ("CI", "SCALEARN_FAST", "SCALEARN_MODE"):
        monkeypatch.delenv(name, raising=False)
    assert notebook.detect_mode() in ("cpu", "full")
    monkeypatch.setenv("SCALEARN_FAST", "1")
    assert notebook.fast_mode() and notebook.detect_mode() == "fast"
    monkeypatch.delenv("SCALEARN_FAST")
    monkeypatch.setenv("CI", "true")
    assert notebook.detect_mode() == "fast"
    monkeypatch.setenv("SCALEARN_MODE", "cpu")  # an explicit mode wins
    assert notebook.detect_mode() == "cpu"
    monkeypatch.setenv("SCALEARN_MODE", "gpu")
    with pytest.raises(ValueError, match="SCALEARN_MODE"):
        notebook.detect_mode()
    assert notebook.by_mode("full", fast=1, cpu=2) == 2 and notebook.by_mode("fast", fast=1, cpu=2) == 1
    assert notebook.PRESET_OF_MODE == {"fast": "tiny", "cpu": "cpu", "full": "colab"}  # paper: for reproduce
    assert notebook.preset_of("full").model == "roberta-base" and notebook.HUB_SET_OF_MODE["full"] == "pf"
    monkeypatch.setenv("SCALEARN_FULL_MODEL", "/somewhere/tiny-roberta")  # a stand-in base model (tests)
    assert notebook.preset_of("full").model == "/somewhere/tiny-roberta" and notebook.preset_of("full").name == "colab"
    assert notebook.preset_of("cpu").model == "embedded"  # only full mode's base model is replaced


def test_setup_shows_the_mode_and_sets_the_folders(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("SCALEARN_RUNS_DIR", str(tmp_path / "runs"))
    env = notebook.setup(seed=3, mode="fast")
    out = capsys.readouterr().out
    assert (env.mode, env.preset, env.seed, env.runs_dir) == ("fast", "tiny", 3, tmp_path / "runs")
    assert "**Mode `fast`**" in out and "`cpu`:" in out and "`full`:" in out  # the chosen mode first, then the others
    assert f"package  {ROOT / 'scalearn_lite'}" in out  # which checkout the kernel imported
    with pytest.raises(ValueError, match="mode"):
        notebook.setup(mode="gpu", verbose=False)


def test_defaults_are_the_notebooks_target_and_sources_per_mode():
    """Notebooks 00, 03, 04 and 05 take their target and sources from here: task names in fast and cpu mode,
    AdapterHub's pf adapters where one is published in full mode."""
    assert notebook.defaults("fast") == ("mrpc", ["sst2", "rte"])
    assert notebook.defaults("cpu") == ("stsb", ["sst2", "qnli", "mrpc", "rte"])
    full = notebook.defaults("full")
    tasks = ["mnli", "qnli", "qqp", "sst2", "stsb", "mrpc", "cola"]
    assert full.target == "rte" and full.sources == notebook.source_refs(tasks, hub="pf")
    assert full.sources[0] == "AdapterHub/roberta-base-pf-mnli"
    notebook.defaults("cpu").sources.append("cola")  # a notebook that adds a source changes only its own list
    assert notebook.defaults("cpu").sources == ["sst2", "qnli", "mrpc", "rte"]
    with pytest.raises(ValueError, match="mode"):
        notebook.defaults("gpu")


def test_full_mode_is_the_colab_preset_and_its_stand_ins(monkeypatch):
    for name in (notebook.ENV_FULL_MODEL, notebook.ENV_FULL_OVERRIDES):
        monkeypatch.delenv(name, raising=False)
    assert notebook.preset_of("full") == get_preset("colab") and notebook.preset_of("cpu") == get_preset("cpu")
    colab = get_preset("colab")
    assert colab.model == "roberta-base" and colab.omega_rate() > colab.transfer_lr  # ω's own rate
    assert get_preset("paper").max_train is None  # the paper's protocol stays, for reproduce
    monkeypatch.setenv(notebook.ENV_FULL_MODEL, "/tmp/tiny-roberta")
    monkeypatch.setenv(notebook.ENV_FULL_OVERRIDES, json.dumps({"max_train": 64}))
    full = notebook.preset_of("full")
    assert (full.name, full.model, full.max_train) == ("colab", "/tmp/tiny-roberta", 64)
    assert notebook.preset_of("fast") == get_preset("tiny")  # only full mode takes the stand-ins
    with pytest.raises(ValueError, match="mode"):
        notebook.preset_of("gpu")


def test_colab_preset_moves_omega_about_as_far_as_the_paper(monkeypatch):
    """ω's travel bound lr·(T+1)/2 over an RTE run of 2,000 rows × 3 epochs, against the paper's 30 epochs of
    2,241 rows at 6e-3 (what the preset's comment says)."""
    colab, paper = get_preset("colab"), get_preset("paper")
    steps = -(-2000 // colab.batch_size) * colab.transfer_epochs  # 63 × 3
    paper_steps = -(-2241 // paper.batch_size) * paper.transfer_epochs  # 71 × 30
    bound, paper_bound = colab.omega_rate() * (steps + 1) / 2, paper.omega_rate() * (paper_steps + 1) / 2
    assert steps == 189 and round(bound, 1) == 5.7 and round(paper_bound, 1) == 6.4


@pytest.fixture
def colab(monkeypatch, tmp_path):
    """A fake Colab: google.colab imported, /content is a temporary folder, no folder variables set."""
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(notebook, "COLAB_ROOT", tmp_path / "content")
    for name in (notebook.ENV_HOME, "SCALEARN_RUNS_DIR", data_mod.ENV_CACHE_DIR):
        monkeypatch.setenv(name, "")  # recorded, so that what setup() exports is undone after the test
        monkeypatch.delenv(name)
    return tmp_path / "content"


def test_on_colab_runs_and_cache_share_one_folder_under_content(colab, capsys):
    env = notebook.setup(mode="fast", verbose=True)
    assert env.runs_dir == colab / "scalearn_lite" / "runs"
    assert env.cache_dir == colab / "scalearn_lite" / "data_cache"
    assert "drive.mount('/content/drive')" in capsys.readouterr().out  # how to keep them across notebooks


def test_on_colab_with_drive_mounted_they_go_to_drive(colab, capsys):
    (colab / "drive" / "MyDrive").mkdir(parents=True)
    env = notebook.setup(mode="fast", verbose=True)
    assert env.runs_dir == colab / "drive" / "MyDrive" / "scalearn_lite" / "runs"
    assert env.cache_dir == colab / "drive" / "MyDrive" / "scalearn_lite" / "data_cache"
    assert "drive.mount" not in capsys.readouterr().out


def test_scalearn_home_wins_and_nothing_changes_off_colab(monkeypatch, tmp_path):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.delenv(notebook.ENV_HOME, raising=False)
    monkeypatch.delenv("SCALEARN_RUNS_DIR", raising=False)
    assert notebook.work_dir() is None and notebook.runs_root().parts[-2:] == ("runs", "notebooks")
    monkeypatch.setenv(notebook.ENV_HOME, str(tmp_path / "home"))
    assert notebook.work_dir() == tmp_path / "home" and notebook.runs_root() == tmp_path / "home" / "runs"


def test_notebook_best_constant_is_the_tables_floor(data_dir):
    """Notebook 03 prints the same floor as the tables: the majority class on the runs' test rows."""
    from scalearn_lite import notebook

    labels = labels_of(data_dir, "rte")
    assert notebook.best_constant("rte", "tiny", data_dir) == pytest.approx(100 * max(map(labels.count, (0, 1))) / len(labels))
    assert notebook.best_constant("stsb", "tiny", data_dir) is None


def test_notebook_source_table_lists_the_adapters_a_transfer_loads(data_dir, monkeypatch):
    """With a target, the table's last row is the target's own adapter on the target budget (the folder stage 1 of a
    transfer resolves it to), not the zoo adapter of the same task; the other rows are zoo sources."""
    from scalearn_lite import notebook
    from scalearn_lite.sources import source_dir

    monkeypatch.setenv("SCALEARN_DATA_DIR", str(data_dir))
    tiny = get_preset("tiny").with_(source_max_train=96, max_train=64, source_epochs=1, target_epochs=1)
    table = notebook.train_sources(["mrpc", "rte"], tiny, target="mrpc")
    assert list(table.index) == ["rte", "mrpc"] and list(table.role) == ["source", "own (target rows)"]
    assert table.loc["mrpc", "adapter"] == str(source_dir("mrpc", tiny, 0, None, role="target", data_dir=data_dir))
    assert table.loc["rte", "adapter"] == str(source_dir("rte", tiny, 0, data_dir=data_dir))
    assert list(table["train rows"]) == [96, 64]
    zoo_only = notebook.train_sources(["mrpc"], tiny)
    zoo_mrpc = str(source_dir("mrpc", tiny, 0, data_dir=data_dir))
    assert zoo_only.loc["mrpc", "adapter"] == zoo_mrpc != table.loc["mrpc", "adapter"]
