"""Atomic artefact writing: complete or absent, never half-written; normal permissions; a folder scalearn_lite did not
write is never replaced; a second writer of a folder waits for the first (the folder lock), then reuses its work."""
import importlib
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from scalearn_lite.config import get_preset
from scalearn_lite.files import (MANIFEST, DiskFullError, atomic_dir, check_writable, damage, foreign_entries, read_json,
                              write_json)
from standins import no_training

sources = importlib.import_module("scalearn_lite.sources")
tr = importlib.import_module("scalearn_lite.transfer")
TINY = get_preset("tiny")
# A run of a few steps: the point of these tests is what happens around training, not what it learns.
SHORT = get_preset("tiny").with_(max_train=32, max_validation=16, max_test=16, transfer_epochs=1)


def test_atomic_dir_replaces_or_leaves_nothing(tmp_path):
    final = tmp_path / "run"
    with atomic_dir(final) as tmp:
        write_json(tmp / "metrics.json", {"a": 1})
    assert read_json(final / "metrics.json") == {"a": 1}
    with pytest.raises(RuntimeError):
        with atomic_dir(final) as tmp:
            write_json(tmp / "metrics.json", {"a": 2})
            raise RuntimeError("killed")
    assert read_json(final / "metrics.json") == {"a": 1}  # the finished folder survives a failed rewrite
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # no temporary folder left


def test_written_files_get_normal_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        write_json(tmp_path / "x.json", [1])
        with atomic_dir(tmp_path / "d"):
            pass
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "x.json").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o755
    assert json.loads((tmp_path / "x.json").read_text()) == [1]


def test_corrupt_json_names_the_file(tmp_path):
    (tmp_path / "m.json").write_text("{oops")
    with pytest.raises(ValueError, match="m.json is corrupt"):
        read_json(tmp_path / "m.json")


# ------------------------------------------------------------- a user's folder is never replaced
def user_folder(root):
    """A folder someone else wrote: a thesis and a data file in a subfolder."""
    root.mkdir()
    (root / "thesis.txt").write_text("chapter 1\n")
    (root / "sub").mkdir()
    (root / "sub" / "data.csv").write_bytes(b"a,b\n1,2\n")
    return root


def snapshot(root):
    return {p.relative_to(root): (p.read_bytes() if p.is_file() else None) for p in root.rglob("*")}


def test_atomic_dir_never_replaces_a_folder_it_did_not_write(tmp_path):
    final = user_folder(tmp_path / "mine")
    before = snapshot(final)
    with pytest.raises(FileExistsError, match=r"refusing to write output folder .*mine: it holds files scalearn_lite "
                                              r"did not write \(sub, thesis.txt\)"):
        with atomic_dir(final) as tmp:
            write_json(tmp / "metrics.json", {"a": 1})
    assert snapshot(final) == before
    (final / "metrics.json").write_text("{}")  # one of our names beside the user's files: still not ours
    with pytest.raises(FileExistsError, match=r"\(sub, thesis.txt\)"):
        check_writable(final, "run folder")
    empty = tmp_path / "empty"
    empty.mkdir()
    check_writable(empty, "run folder")  # missing, empty or ours: fine
    check_writable(tmp_path / "missing", "run folder")
    with atomic_dir(empty) as tmp:
        write_json(tmp / "metrics.json", {"a": 1})
    with atomic_dir(empty) as tmp:  # ours now: replaced
        write_json(tmp / "metrics.json", {"a": 2})
    assert read_json(empty / "metrics.json") == {"a": 2}
    assert foreign_entries(empty) == []


@pytest.mark.parametrize("command", ["transfer", "train-source"])
@pytest.mark.parametrize("force", [False, True])
def test_out_with_a_users_files_is_left_byte_identical(command, force, data_dir, tmp_path, capsys, monkeypatch):
    import importlib

    from scalearn_lite import cli
    from scalearn_lite.sources import training as sources  # where train_source calls fit_source
    transfer = importlib.import_module("scalearn_lite.transfer")  # the module (the package exports the function)

    def boom(*a, **k):
        raise AssertionError("trained")

    monkeypatch.setattr(sources, "fit_source", boom)
    monkeypatch.setattr(transfer, "fit", boom)
    out = user_folder(tmp_path / "DIR")
    before = snapshot(out)
    argv = ([command, "rte", "--preset", "tiny", "--data-dir", str(data_dir), "--out", str(out), "--quiet"]
            + (["--sources", "cola"] if command == "transfer" else []) + (["--force"] if force else []))
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds files scalearn_lite did not write (sub, thesis.txt)" in err, err
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["DIR"]  # no lock file, no temporary folder


def test_out_dot_is_refused_before_any_work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileExistsError, match="it is the current folder"):
        check_writable(".", "run folder")


# ------------------------------------------------------------- manifest: damage is found and named
def test_a_manifest_records_every_file_and_finds_truncation(tmp_path):
    final = tmp_path / "run"
    with atomic_dir(final) as tmp:
        (tmp / "head").mkdir()
        (tmp / "head" / "w.safetensors").write_bytes(b"x" * 100)
        write_json(tmp / "metrics.json", {"a": 1})
    files = read_json(final / MANIFEST)["files"]
    assert set(files) == {"head/w.safetensors", "metrics.json"} and files["head/w.safetensors"]["bytes"] == 100
    assert damage(final) is None
    with open(final / "head" / "w.safetensors", "r+b") as fh:
        fh.truncate(40)
    assert damage(final) == "head/w.safetensors has 40 bytes, 100 were written (truncated or replaced)"
    (final / "head" / "w.safetensors").write_bytes(b"y" * 100)
    assert "does not match the sha256" in damage(final)
    (final / "head" / "w.safetensors").unlink()
    assert damage(final) == "head/w.safetensors is missing"
    (final / MANIFEST).unlink()
    assert damage(final) is None  # folders written before manifests: nothing to check against


# ------------------------------------------------------------------------------------- disk full
SAFETENSORS_FULL = ('Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space left on '
                    'device" })')  # what safetensors' save_file says when the disk fills


def test_a_full_disk_names_the_folder_keeps_the_old_one_and_leaves_no_temp(tmp_path):
    import errno

    from safetensors import SafetensorError

    final = tmp_path / "run"
    with atomic_dir(final) as tmp:
        write_json(tmp / "metrics.json", {"run": 1})
    with pytest.raises(DiskFullError, match=f"cannot write {final}: no space left on the device .*StorageFull"):
        with atomic_dir(final) as tmp:
            raise SafetensorError(SAFETENSORS_FULL)  # what save_file says when the disk fills
    assert read_json(final / "metrics.json") == {"run": 1} and damage(final) is None
    assert [p.name for p in tmp_path.iterdir()] == ["run"]

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    import scalearn_lite.files as files_mod

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(files_mod.json, "dump", full)
        with pytest.raises(DiskFullError, match=f"cannot write {tmp_path / 'x.json'}: no space left"):
            write_json(tmp_path / "x.json", {"a": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no temporary file left


def test_the_cli_says_disk_full_in_one_line_with_exit_2(monkeypatch, capsys, tmp_path):
    from safetensors import SafetensorError

    from scalearn_lite import cli

    def writes(args):
        with atomic_dir(tmp_path / "run") as tmp:
            raise SafetensorError(SAFETENSORS_FULL)

    def elsewhere(args):
        raise SafetensorError(SAFETENSORS_FULL)

    for command, named in ((writes, str(tmp_path / "run")), (elsewhere, "StorageFull")):
        monkeypatch.setattr(cli, "cmd_tasks", command)
        assert cli.main(["tasks"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "no space left on the device" in err and named in err, err


# ----------------------------------------------- a killed or failed writer leaves no temporary folder
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


# --------------------------------------------------------------- --out is checked before any training
def test_an_unwritable_out_fails_before_training(data_dir, tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    no_training(monkeypatch)
    with pytest.raises(NotADirectoryError, match=f"cannot write run folder .*{re.escape(str(blocker))} is a file"):
        tr.transfer("mrpc", [], "head_only", TINY, data_dir=data_dir, out=blocker / "run", progress=False)
    with pytest.raises(FileExistsError, match="a file of that name exists"):
        sources.train_source("rte", TINY, data_dir=data_dir, seed=9, out=blocker, progress=False)


# ------------------------------------------- two writers of one folder: the second waits, then reuses
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
