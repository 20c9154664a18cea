"""Run folders: a damaged folder is named, never reused; load_run serves a run only with the source weights it was
trained with, and those are fingerprinted when they were loaded."""
import importlib
import json
import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file

from scalearn_lite import cli
from scalearn_lite.config import get_preset
from scalearn_lite.files import MANIFEST
from scalearn_lite.runs import load_run
from scalearn_lite.sources import SOURCE_META, file_record, source_fingerprint, train_source

tr = importlib.import_module("scalearn_lite.transfer")
# a run of a few steps: what matters here is the folder, not what it learns
SHORT = get_preset("tiny").with_(max_train=32, max_validation=16, max_test=16, transfer_epochs=1)


def transfer_over(source: Path, out: Path, data_dir):
    return tr.transfer("mrpc", [str(source)], "scalearn", SHORT, data_dir=data_dir, out=out, include_target=False,
                       progress=False)


def perturb(source: Path) -> None:
    """Other weights in a source folder, same names and shapes, and their record: as a retrain leaves it."""
    path = source / "adapter.safetensors"
    weights = {k: v + 1.0 for k, v in load_file(str(path)).items()}
    save_file(weights, str(path))
    meta = json.loads((source / SOURCE_META).read_text())
    meta["files"] = file_record(source)
    (source / SOURCE_META).write_text(json.dumps(meta))


def truncate(path: Path, keep: int = 40) -> None:
    with open(path, "r+b") as fh:
        fh.truncate(keep)


@pytest.fixture(scope="module")
def finished(data_dir, tmp_path_factory):
    """(a finished scalearn run over a private copy of the tiny RTE adapter, that copy)."""
    root = tmp_path_factory.mktemp("runs")
    rte = train_source("rte", get_preset("tiny"), data_dir=data_dir, seed=0, progress=False).path
    source = Path(shutil.copytree(rte, root / "rte-adapter"))
    return transfer_over(source, root / "run", data_dir).path, source


def copy_run(finished, tmp_path) -> Path:
    return Path(shutil.copytree(finished[0], tmp_path / "run"))


@pytest.mark.parametrize("damaged", ["omega.safetensors", "head/model_head.safetensors"])
def test_a_truncated_file_is_named_on_load_and_the_folder_is_never_reused(damaged, finished, data_dir, tmp_path,
                                                                        capsys):
    run = copy_run(finished, tmp_path)
    truncate(run / damaged)
    want = f"run folder .*run is corrupt: {damaged} has 40 bytes, .* were written.*--force"
    with pytest.raises(ValueError, match=want):
        load_run(run)
    code = cli.main(["transfer", "mrpc", "--sources", str(finished[1]), "--method", "scalearn", "--preset", "tiny",
                     "--exclude-target", "--data-dir", str(data_dir), "--out", str(run), "--quiet"])
    err = capsys.readouterr()
    assert code == 2 and "reused" not in err.out and err.err.count("\n") == 1 and damaged in err.err, err


@pytest.mark.parametrize("damaged", ["omega.safetensors", "head/model_head.safetensors"])
def test_a_folder_without_a_manifest_still_loads_and_names_a_damaged_file(damaged, finished, tmp_path):
    run = copy_run(finished, tmp_path)
    (run / MANIFEST).unlink()  # as written before manifests
    net, _, task, cfg = load_run(run)
    assert cfg["method"] == "scalearn"
    truncate(run / damaged)
    with pytest.raises(ValueError, match=f"{Path(damaged).parts[0]}.* corrupt; rerun it with --force"):
        load_run(run)


def test_load_run_refuses_a_source_whose_weights_changed_unless_asked(finished, tmp_path):
    run = copy_run(finished, tmp_path)
    cfg = json.loads((run / "config.json").read_text())
    source = Path(shutil.copytree(finished[1], tmp_path / "rte-adapter"))
    cfg["source_refs"] = [str(source)]
    (run / "config.json").write_text(json.dumps(cfg))
    (run / MANIFEST).unlink()  # config.json edited on purpose: this test is about the source
    load_run(run)  # same weights: loads
    perturb(source)
    with pytest.raises(ValueError, match=r"trained with source 'rte' \(.*rte-adapter\) whose weights have changed since"
                                         r".*--force.*allow_changed_sources=True"):
        load_run(run)
    with pytest.warns(UserWarning, match="loaded with the current weights"):
        net, *_ = load_run(run, allow_changed_sources=True)
    shutil.rmtree(source)
    with pytest.raises(FileNotFoundError, match="source 'rte' .* is gone"):
        load_run(run)


def test_fingerprints_are_of_the_weights_loaded_not_of_those_at_save_time(finished, data_dir, tmp_path, monkeypatch):
    source = Path(shutil.copytree(finished[1], tmp_path / "rte-adapter"))
    loaded = source_fingerprint(str(source))
    real_fit = tr.fit

    def replaced_while_training(*a, **k):
        perturb(source)  # another process retrains the source while this transfer trains
        return real_fit(*a, **k)

    monkeypatch.setattr(tr, "fit", replaced_while_training)
    res = transfer_over(source, tmp_path / "run", data_dir)
    cfg = json.loads((res.path / "config.json").read_text())
    assert source_fingerprint(str(source)) != loaded
    assert cfg["source_fingerprints"] == [loaded]  # the weights the run was trained with
    with pytest.raises(ValueError, match="whose weights have changed since"):
        load_run(res.path)  # so the changed source is caught on load


def test_a_run_folder_with_a_crafted_head_config_is_refused_before_loading(finished, tmp_path, monkeypatch):
    from scalearn_lite import runs

    run = copy_run(finished, tmp_path)
    head = json.loads((run / "head" / "head_config.json").read_text())
    head["config"]["_attn_implementation_internal"] = "attacker/evil-kernels"
    (run / "head" / "head_config.json").write_text(json.dumps(head))
    (run / MANIFEST).unlink()  # edited on purpose: the point is the config check, not the manifest

    def boom(*a, **k):
        raise AssertionError("the base model was loaded")

    monkeypatch.setattr(runs, "load_base", boom)
    with pytest.raises(ValueError, match="head_config.json: config._attn_implementation_internal"):
        load_run(run)
