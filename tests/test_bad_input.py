"""Bad input and faults: a clear error before any long work, naming what is wrong and how to fix
it; nothing already written is lost or poisoned. One section per item of the issue."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import importlib

import pytest
from safetensors.torch import save_file

from scalearn_lite import cli, data
from scalearn_lite.config import PRESETS, get_preset
from scalearn_lite.files import atomic_dir, write_json
from scalearn_lite.tasks import get_task

sources = importlib.import_module("scalearn_lite.sources")
tr = importlib.import_module("scalearn_lite.transfer")
from scalearn_lite import runs as runs_mod
from scalearn_lite import sources as sources_mod
TINY = get_preset("tiny")
# A run of a few steps: the point of these tests is what happens around training, not what it learns.
SHORT = TINY.with_(max_train=32, max_validation=16, max_test=16, transfer_epochs=1)


class Trained(Exception):
    """Raised by a stubbed training function: the code got as far as training."""


def no_training(monkeypatch):
    """Make any stage-1 or stage-2 training raise Trained."""
    def boom(*a, **k):
        raise Trained

    monkeypatch.setattr(sources.training, "fit_source", boom)
    monkeypatch.setattr(tr, "fit", boom)


@pytest.fixture(scope="module")
def rte_adapter(data_dir):
    """The tiny preset's cached RTE adapter (trained once per test session)."""
    return sources.train_source("rte", TINY, data_dir=data_dir, seed=0, progress=False).path


def copy_adapter(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)  # copy2: mtimes kept, so the recorded fingerprints still apply
    return dst


def glue_folder(root: Path, data_dir: Path, task_dir: str, files=("train.tsv", "dev.tsv"), lines=None) -> Path:
    """root/glue_data/<task_dir>/ with copies of the real files (optionally only their first `lines` lines)."""
    folder = root / "glue_data" / task_dir
    folder.mkdir(parents=True)
    for name in files:
        text = (data_dir / "glue_data" / task_dir / name).read_text(encoding="utf-8")
        if lines is not None:
            text = "\n".join(text.split("\n")[:lines]) + "\n"
        (folder / name).write_text(text, encoding="utf-8")
    return folder


# ------------------------------------------------------------------- 1. no train file, data identity
def test_a_glue_folder_without_train_never_trains_on_its_test_split(data_dir, tmp_path, monkeypatch):
    glue_folder(tmp_path, data_dir, "RTE", files=("dev.tsv",))
    no_training(monkeypatch)
    want = re.escape(str(tmp_path / "glue_data" / "RTE" / "train.tsv"))
    with pytest.raises(ValueError, match=f"'rte' has no training file at {want}.*qnli, boolq"):
        sources.train_source("rte", TINY, data_dir=tmp_path, out=tmp_path / "out", progress=False)
    with pytest.raises(ValueError, match=f"no training file at {want}"):
        data.load_splits("rte", tmp_path, dev_as_train=True)
    assert not (tmp_path / "out").exists()
    glue_folder(tmp_path, data_dir, "MRPC")
    with pytest.raises(ValueError, match=f"no training file at {want}"):  # as a source of a transfer: before training
        tr.transfer("mrpc", ["rte"], "scalearn", TINY, data_dir=tmp_path, out=tmp_path / "run", progress=False)


def test_the_stage1_cache_key_holds_the_data_identity(data_dir, tmp_path, monkeypatch, rte_adapter):
    same = tmp_path / "same"
    glue_folder(same, data_dir, "RTE")
    assert data.data_identity("rte", same) == data.data_identity("rte", data_dir)  # content, not place
    assert sources.train_source("rte", TINY, data_dir=same, progress=False).cached
    other = tmp_path / "other"
    glue_folder(other, data_dir, "RTE", lines=400)  # another training set under the same folder layout
    fingerprint = data.data_identity("rte", other)
    assert fingerprint["local"]["train"]["bytes"] < data.data_identity("rte", data_dir)["local"]["train"]["bytes"]
    no_training(monkeypatch)
    with pytest.raises(Trained):  # not served the adapter of other data
        sources.train_source("rte", TINY, data_dir=other, progress=False)
    saved = json.loads((rte_adapter / sources.SOURCE_META).read_text())["settings"]["data"]
    assert saved["local"]["train"]["sha256"] == data.data_identity("rte", data_dir)["local"]["train"]["sha256"]


def test_train_source_cli_reports_a_dev_only_source_without_a_test_split(monkeypatch, capsys, tmp_path):
    metrics = {"task": "qnli", "base": "b", "metric": "accuracy", "test": {}, "validation": {"accuracy": 0.7},
               "steps": 3, "seconds": 1.0}
    monkeypatch.setattr(sources, "train_source", lambda *a, **k: sources.SourceResult(tmp_path, metrics, False))
    assert cli.main(["train-source", "qnli", "--preset", "tiny"]) == 0
    assert "no test split (a dev-only task" in capsys.readouterr().out


# ------------------------------------------------------------------------------------ 2. bad labels
def test_a_bad_label_names_file_line_and_expected_values(data_dir, tmp_path):
    folder = glue_folder(tmp_path, data_dir, "RTE", lines=6)
    lines = (folder / "train.tsv").read_text().split("\n")
    parts = lines[2].split("\t")
    lines[2] = "\t".join(parts[:-1] + ["maybe"])
    (folder / "train.tsv").write_text("\n".join(lines))
    path = re.escape(str(folder / "train.tsv"))
    with pytest.raises(ValueError, match=f"{path}, line 3: label 'maybe' is not one of entailment / not_entailment "
                                         r"\(or their ids 0..1\) \(task rte\)"):
        data.load_raw("rte", tmp_path, source="local")
    sst = glue_folder(tmp_path, data_dir, "SST-2", lines=5)
    text = (sst / "train.tsv").read_text().split("\n")
    text[3] = text[3].rsplit("\t", 1)[0] + "\t7"
    (sst / "train.tsv").write_text("\n".join(text))
    with pytest.raises(ValueError, match=r"SST-2/train.tsv, line 4: label '7' is not one of negative / positive"):
        data.load_raw("sst2", tmp_path, source="local")


def test_a_label_out_of_range_via_the_api_names_the_row():
    rows = [{"sentence": "fine", "label": 1, "idx": 0}, {"sentence": "odd", "label": 7, "idx": 1}]
    with pytest.raises(ValueError, match=r"task 'sst2', row 1: label 7 is not one of negative / positive"):
        data.to_dataset("sst2", data.process_rows("sst2", rows))
    with pytest.raises(ValueError, match="row 0: label nan is not one of a number"):
        data.process_rows("stsb", [{"sentence1": "a", "sentence2": "b", "label": float("nan"), "idx": 0}])


def test_malformed_rows_are_refused_by_line(data_dir, tmp_path):
    folder = glue_folder(tmp_path, data_dir, "RTE", lines=8)
    lines = (folder / "train.tsv").read_text().split("\n")
    lines[3] = lines[3].rsplit("\t", 1)[0]  # a row that lost its label column
    lines[5] = lines[5] + "\textra"
    (folder / "train.tsv").write_text("\n".join(lines))
    with pytest.raises(ValueError, match=r"train.tsv: line\(s\) 4, 6 do not have the 4 tab-separated fields"):
        data.load_raw("rte", tmp_path, source="local")


def test_superglue_bad_label_and_missing_field_name_the_line(data_dir, tmp_path):
    folder = tmp_path / "superglue" / "CB"
    folder.mkdir(parents=True)
    rows = [json.loads(l) for l in (data_dir / "superglue" / "CB" / "val.jsonl").read_text().splitlines()[:3]]
    shutil.copy(data_dir / "superglue" / "CB" / "train.jsonl", folder / "train.jsonl")
    rows[1]["label"] = "maybe"
    (folder / "val.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(ValueError, match=r"val.jsonl, line 2: label 'maybe' is not one of entailment / "
                                         r"contradiction / neutral"):
        data.load_raw("cb", tmp_path, source="local")
    del rows[1]["premise"]
    (folder / "val.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(ValueError, match=r"val.jsonl, line 2: missing field\(s\) \['premise'\]"):
        data.load_raw("cb", tmp_path, source="local")


# ------------------------------------------------------------------- 3. sources checked before training
def test_a_source_of_another_base_model_is_refused_before_any_training(data_dir, tmp_path, monkeypatch, rte_adapter):
    wide = copy_adapter(rte_adapter, tmp_path / "wide")
    cfg = json.loads((wide / "adapter_config.json").read_text())
    cfg["hidden_size"] = 768
    (wide / "adapter_config.json").write_text(json.dumps(cfg))
    (wide / sources.SOURCE_META).unlink()  # a foreign folder: no metadata of ours
    no_training(monkeypatch)
    # 48 target rows: the target's own adapter is not cached, so it would train before the sources are looked at
    with pytest.raises(ValueError, match="hidden size 768 but the base model has 384"):
        tr.transfer("mrpc", ["rte", str(wide)], "scalearn", TINY.with_(max_train=48), data_dir=data_dir,
                    out=tmp_path / "run", progress=False)


def test_source_checks_cover_layer_count_and_missing_data(data_dir, tmp_path, rte_adapter):
    foreign = copy_adapter(rte_adapter, tmp_path / "two_layers")
    (foreign / sources.SOURCE_META).unlink()
    with pytest.raises(ValueError, match=r"adapter weights for 2 layer\(s\) but the base model has 1"):
        sources.check_sources([str(foreign)], TINY.with_(num_layers=1))
    sources.check_sources([str(foreign), "rte"], TINY, data_dir)  # fits: no error
    glue_folder(tmp_path / "d", data_dir, "RTE", files=("dev.tsv",))
    with pytest.raises(ValueError, match="'rte' has no training file"):
        sources.check_sources([str(foreign), "rte"], TINY, tmp_path / "d")


# ---------------------------------------------------------------------------- 4. corrupt cached adapter
def test_a_corrupt_cached_adapter_is_retrained_not_reported(tmp_path, monkeypatch, rte_adapter, data_dir):
    folder = copy_adapter(rte_adapter, tmp_path / "rte")
    assert sources.train_source("rte", TINY, data_dir=data_dir, out=folder, progress=False).cached
    weights = folder / "adapter.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # truncated
    from scalearn_lite.models import load_base

    model, _ = load_base(TINY.model, TINY.num_layers)
    with pytest.raises(ValueError, match="corrupt.*adapter.safetensors does not match the sha256.*--force"):
        sources.check_adapter_folder(folder, model, "rte")
    no_training(monkeypatch)
    with pytest.warns(UserWarning, match=f"cached adapter {re.escape(str(folder))} is corrupt"):
        with pytest.raises(Trained):
            sources.train_source("rte", TINY, data_dir=data_dir, out=folder, progress=False)


# --------------------------------------------------------------------------------- 5. temp folders, --out
def test_stale_temp_folders_of_a_killed_writer_are_removed(tmp_path):
    final = tmp_path / "seed0"
    (tmp_path / ".seed0.tmp-abc123").mkdir()  # what kill -9 in the save window leaves
    (tmp_path / ".seed0.old-4242").mkdir()
    (tmp_path / ".seed01.tmp-abc123").mkdir()  # another folder's: kept
    with atomic_dir(final) as tmp:
        write_json(tmp / "metrics.json", {"a": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == [".seed01.tmp-abc123", "seed0"]


def test_a_failed_replace_restores_the_old_folder_and_leaves_no_temp(tmp_path, monkeypatch):
    final = tmp_path / "out"
    with atomic_dir(final) as tmp:
        write_json(tmp / "metrics.json", {"run": 1})
    real = os.replace

    def flaky(src, dst):
        if Path(src).name.startswith(".out.tmp-"):  # the swap of the finished temp folder into place
            raise PermissionError("rename refused")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", flaky)
    with pytest.raises(PermissionError):
        with atomic_dir(final) as tmp:
            write_json(tmp / "metrics.json", {"run": 2})
    monkeypatch.undo()
    assert json.loads((final / "metrics.json").read_text()) == {"run": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_an_unwritable_out_fails_before_training(data_dir, tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    no_training(monkeypatch)
    with pytest.raises(NotADirectoryError, match=f"cannot write run folder .*{re.escape(str(blocker))} is a file"):
        tr.transfer("mrpc", [], "head_only", TINY, data_dir=data_dir, out=blocker / "run", progress=False)
    with pytest.raises(FileExistsError, match="a file of that name exists"):
        sources.train_source("rte", TINY, data_dir=data_dir, seed=9, out=blocker, progress=False)


# ------------------------------------------------------------------- 6. reuse only with the same sources
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


def test_the_default_run_folder_depends_on_the_sources(tmp_path):
    def folder(srcs):
        spec, names_in = tr._prepare("mrpc", srcs, "scalearn", TINY, 0, None, True, None)
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


def test_transfer_cli_says_reused(monkeypatch, capsys, tmp_path):
    metrics = {"method": "scalearn", "target": "rte", "sources": ["cb", "rte"], "metric": "accuracy",
               "test_metric": 0.5, "validation_metric": 0.5, "transfer_params": 10, "wall_seconds": 123.0,
               "steps": 4, "step_budget": 4, "rows": {"train": 32, "validation": 16}}
    monkeypatch.setattr(tr, "transfer", lambda *a, **k: runs_mod.RunResult(tmp_path, metrics, reused=True))
    assert cli.main(["transfer", "rte", "--sources", "cb", "--preset", "tiny"]) == 0
    assert "reused: finished earlier in 123 s, nothing trained now" in capsys.readouterr().out


# --------------------------------------------------------------------------------- 7. tasks --data-dir
def test_tasks_with_a_data_dir_that_does_not_exist_is_an_error(tmp_path, capsys):
    assert cli.main(["tasks", "--data-dir", str(tmp_path / "nope")]) == 2
    assert f"data dir {tmp_path / 'nope'} (from --data-dir" in capsys.readouterr().err


# ------------------------------------------------------------------------- 8. names of folder sources
def test_folder_sources_are_named_by_their_task_and_made_unique(tmp_path):
    def ours(path, task, k=None):
        path.mkdir(parents=True)
        write_json(path / sources.SOURCE_META, {"settings": {"task": task, "k_shot": k}})
        return str(path)

    a = ours(tmp_path / "a" / "rte" / "seed0", "rte")
    b = ours(tmp_path / "b" / "rte" / "seed1", "rte")
    c = ours(tmp_path / "c" / "cb-k16" / "seed0", "cb", 16)
    foreign = tmp_path / "hub_download" / "seed0"
    foreign.mkdir(parents=True)
    write_json(foreign / "adapter_config.json", {"name": "sst-2"})
    spec, _ = tr._prepare("mrpc", [a, b, c, str(foreign)], "scalearn", TINY, 0, None, True, None)
    assert spec.sources == ["rte", "rte_2", "cb-k16", "sst-2", "mrpc"]


# --------------------------------------------------------------------------------- 9. --exclude-target
def test_exclude_target_with_only_the_target_as_source_says_so():
    with pytest.raises(ValueError, match="the only source given, 'rte', is the target 'rte' itself, which "
                                         "--exclude-target"):
        sources_mod.order_sources(get_task("rte"), ["rte"], include_target=False)


# ---------------------------------------------------------------------------- 10. more failure tests
_HOLDER = """
import shutil, sys, time, types
package = types.ModuleType("scalearn_lite")  # the package's files.py alone, not its __init__: no torch to import
package.__path__ = [sys.argv[1]]
sys.modules["scalearn_lite"] = package
import scalearn_lite.files as files
with files.folder_lock(sys.argv[3], sys.argv[4]):
    print("locked", flush=True)
    time.sleep(1.5)  # still training, as far as the other process can tell
    with files.atomic_dir(sys.argv[3]) as tmp:
        shutil.copytree(sys.argv[2], tmp, dirs_exist_ok=True)
"""


def test_a_second_writer_of_a_run_folder_waits_for_the_first_then_reuses_its_run(data_dir, tmp_path, monkeypatch,
                                                                                  capsys):
    kw = dict(data_dir=data_dir, progress=False)
    done = tr.transfer("mrpc", [], "head_only", SHORT, out=tmp_path / "done", **kw)
    package_dir = Path(tr.__file__).parent
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(package_dir), str(done.path), str(tmp_path / "run"),
                               "run folder"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    no_training(monkeypatch)  # the second writer must not train: it waits, then finds the finished run
    res = tr.transfer("mrpc", [], "head_only", SHORT, out=tmp_path / "run", **kw)
    assert holder.wait(timeout=60) == 0, holder.stderr.read()
    assert res.reused and res.metrics == done.metrics
    assert f"waiting: another process (pid {holder.pid}) is writing the run folder" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["done", "run"]  # no lock file or temp folder left


def test_a_second_trainer_of_an_adapter_waits_for_the_first_then_reuses_it(data_dir, tmp_path, monkeypatch, capsys,
                                                                           rte_adapter):
    """Two processes asking for the same stage-1 adapter (the demo's workers, two notebooks) train it once."""
    package_dir = Path(tr.__file__).parent
    folder = tmp_path / "rte" / "seed0"
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(package_dir), str(rte_adapter), str(folder),
                               "adapter folder"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    no_training(monkeypatch)  # the second trainer must not train: it waits, then finds the adapter
    res = sources.train_source("rte", TINY, data_dir=data_dir, seed=0, out=folder, progress=False)
    assert holder.wait(timeout=60) == 0, holder.stderr.read()
    assert res.cached and res.metrics == sources.train_source("rte", TINY, data_dir=data_dir, seed=0).metrics
    assert f"waiting: another process (pid {holder.pid}) is writing the adapter folder" in capsys.readouterr().err
    assert sorted(p.name for p in folder.parent.iterdir()) == ["seed0"]  # no lock file or temp folder left


def test_a_diverging_loss_stops_with_a_clear_message_and_saves_nothing(data_dir, tmp_path):
    from scalearn_lite.train import TrainingDiverged

    with pytest.raises(TrainingDiverged, match=r"head_only → mrpc: the (training|validation) loss became (nan|inf)"
                                               r".*lower the learning rate"):
        tr.transfer("mrpc", [], "head_only", SHORT.with_(transfer_lr=1e37), data_dir=data_dir, out=tmp_path / "run",
                    progress=False)
    assert list(tmp_path.iterdir()) == []


def test_paths_with_spaces_and_non_ascii_characters(data_dir, tmp_path, rte_adapter):
    root = tmp_path / "dätä dir"
    glue_folder(root, data_dir, "MRPC")
    src = copy_adapter(rte_adapter, tmp_path / "mes adaptateurs é" / "rte 0")
    res = tr.transfer("mrpc", [str(src)], "average", SHORT, data_dir=root, include_target=False,
                      out=tmp_path / "rün ö" / "run 1", progress=False)
    assert (res.path / "metrics.json").is_file() and res.metrics["sources"] == ["rte"]
    net, *_ = runs_mod.load_run(res.path)  # reloads from the same paths
    with pytest.raises(FileNotFoundError, match="adapter folder .*my adäpters/rte does not exist"):
        tr.transfer("mrpc", ["my adäpters/rte"], "scalearn", SHORT, data_dir=root, out=tmp_path / "x", progress=False)


def test_a_humset_folder_with_a_missing_column_names_file_and_line(tmp_path):
    fixture = Path(__file__).resolve().parent / "fixtures" / "humset"
    rows = [json.loads(l) for l in (fixture / "train.jsonl").read_text("utf-8").splitlines()]
    del rows[3]["sectors"]
    (tmp_path / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n", "utf-8")
    shutil.copy(fixture / "test.jsonl", tmp_path / "test.jsonl")
    with pytest.raises(ValueError, match=r"train.jsonl, line 4: missing HumSet column\(s\) \['sectors'\]"):
        data.load_splits("sectors", tmp_path)
    with open(tmp_path / "train.csv", "w", encoding="utf-8") as fh:
        fh.write("entry_id,excerpt,sectors\n1,flooding,\"['Health']\"\n2,no label column\n")
    (tmp_path / "train.jsonl").unlink()
    with pytest.raises(ValueError, match=r"train.csv, line 3: 3 columns in the header"):
        data.load_splits("sectors", tmp_path)
