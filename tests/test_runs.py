"""Run folders: a damaged folder is named, never reused; load_run serves a run only with the source weights it was
trained with, and those are fingerprinted when they were loaded; a folder holds no pickle (old .pt/.bin ones still
load) and the data identity in its config.json."""
import importlib
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from scalearn_lite import cli
from scalearn_lite import data as data_mod
from scalearn_lite import methods as methods_mod
from scalearn_lite import runs as runs_mod
from scalearn_lite.config import PRESETS, get_preset
from scalearn_lite.data import load_task_data
from scalearn_lite.encoding import encode
from scalearn_lite.files import MANIFEST
from scalearn_lite.runs import load_run
from scalearn_lite.sources import SOURCE_META, file_record, read_weights, source_fingerprint, train_source
from scalearn_lite.train import predict
from standins import copy_adapter

sources = importlib.import_module("scalearn_lite.sources")
tr = importlib.import_module("scalearn_lite.transfer")
# a run of a few steps: what matters here is the folder, not what it learns
SHORT = get_preset("tiny").with_(max_train=32, max_validation=16, max_test=16, transfer_epochs=1)
TINY = get_preset("tiny").with_(max_train=128, transfer_epochs=1)  # as test_transfer: same cached sources


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


# ---------------------------------------- a run folder needs no pickle; an old-format one still loads
def _logits(net, tok, task, data_dir):
    rows = load_task_data(task, TINY, data_dir)["test"]
    return predict(net, task, encode(task, rows, tok, TINY.max_length), tok, head=methods_mod.HEAD)[0]


def test_a_run_folder_needs_no_pickle_and_an_old_format_folder_still_loads(data_dir, tmp_path, monkeypatch):
    res = tr.transfer("mrpc", ["rte"], "scalearn", TINY, data_dir=data_dir, out=tmp_path / "run", progress=False)
    again = tr.transfer("mrpc", ["rte"], "scalearn", TINY, data_dir=data_dir, out=tmp_path / "run", progress=False)
    assert again.metrics == res.metrics  # same data: the finished folder is reused
    with monkeypatch.context() as m:  # another copy of the data (other file contents): not the same run
        m.setattr(data_mod, "data_identity", lambda *a, **k: {"local": {"train": {"sha256": "0" * 64}}})
        with pytest.raises(ValueError, match="other settings \\(data: saved"):
            tr.transfer("mrpc", ["rte"], "scalearn", TINY, data_dir=data_dir, out=tmp_path / "run", progress=False)
    files = [p for p in res.path.rglob("*") if p.is_file()]
    assert not [p for p in files if p.suffix in (".pt", ".bin", ".pkl")], files
    assert {"omega.safetensors", "omega.json", "model_head.safetensors"} <= {p.name for p in files}
    cfg = json.loads((res.path / "config.json").read_text())
    assert cfg["data"] == data_mod.data_identity("mrpc", data_dir)  # the target's data: file names, sizes, sha256
    assert len(cfg["data"]["local"]["train"]["sha256"]) == 64
    for ref in cfg["source_refs"]:  # every source folder: safetensors, and its data identity in its metadata
        assert not [p for p in tr.Path(ref).iterdir() if p.suffix in (".pt", ".bin")]
        assert json.loads((tr.Path(ref) / "scalearn_source.json").read_text())["settings"]["data"]["local"]
    net, tok, task, _ = runs_mod.load_run(res.path)
    new = _logits(net, tok, task, data_dir)

    old = tmp_path / "old"  # the same run as an older version wrote it: omega.pt and a pickled head
    old.mkdir()
    for name in ("config.json", "metrics.json", "omega.json", "history.csv"):
        (old / name).write_bytes((res.path / name).read_bytes())
    saved = runs_mod.load_omega(res.path)
    torch.save({"omega": saved["omega"], "sources": saved["sources"]}, old / "omega.pt")
    (old / "head").mkdir()
    (old / "head" / "head_config.json").write_bytes((res.path / "head" / "head_config.json").read_bytes())
    torch.save(read_weights(res.path / "head" / "model_head.safetensors"), old / "head" / "pytorch_model_head.bin")
    net2, tok2, task2, _ = runs_mod.load_run(old)
    assert (_logits(net2, tok2, task2, data_dir) == new).all()  # identical logits from either format


# ----------------------------------------- a finished run is reused only with the same source weights
def test_a_finished_run_is_reused_only_while_its_sources_keep_their_weights(data_dir, tmp_path, rte_adapter):
    src = copy_adapter(rte_adapter, tmp_path / "src")
    kw = dict(data_dir=data_dir, include_target=False, out=tmp_path / "run", progress=False)
    first = tr.transfer("mrpc", [str(src)], "average", SHORT, **kw)
    assert not first.reused
    config = json.loads((first.path / "config.json").read_text())
    assert config["source_fingerprints"] == [sources.weights_fingerprint(src)]
    again = tr.transfer("mrpc", [str(src)], "average", SHORT, **kw)
    assert again.reused and again.metrics == first.metrics
    weights = sources.read_weights(src / "adapter.safetensors")
    save_file({k: v * 2 for k, v in weights.items()}, str(src / "adapter.safetensors"))  # same path, other weights
    with pytest.raises(ValueError, match="source 'rte' .* had other weights .*--force"):
        tr.transfer("mrpc", [str(src)], "average", SHORT, **kw)


# ---------------------------------------------------- run folder names: one per source set and preset
def test_the_default_run_folder_depends_on_the_sources(tmp_path):
    def folder(srcs):
        spec, names_in = tr._prepare("mrpc", srcs, "scalearn", get_preset("tiny"), 0, None, True, None)
        return runs_mod.run_dir(spec, refs=names_in)

    a, b = folder(["rte"]), folder(["rte", "sst2"])
    assert a != b and a.parent.parent == b.parent.parent and a.name == b.name == "seed0"
    assert a.parent.name.startswith("rte+mrpc-") and folder(["rte"]) == a


def test_two_presets_in_one_output_folder_get_two_run_folders():
    # `make demo` (demo preset) and `scalearn-lite demo --preset cpu` both default to runs/demo: neither may find the
    # other's finished run in its folder and refuse it as "other settings"
    def folder(preset, method="scalearn"):
        spec, names_in = tr._prepare("mrpc", ["rte", "sst2"], method, preset, 0, None, True, None)
        return runs_mod.run_dir(spec, root="runs/demo", refs=names_in)

    cpu, demo = PRESETS["cpu"], PRESETS["demo"]
    assert folder(cpu) != folder(demo) and folder(cpu).parent.parent == folder(demo).parent.parent
    assert folder(demo) == folder(demo.with_(transfer_lr=1.0))  # same name: check_same_run compares the fields
    no_sources = folder(cpu, "head_only")
    assert no_sources.parent.name.startswith("none-") and no_sources != folder(demo, "head_only")
