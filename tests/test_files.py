"""Atomic artefact writing: complete or absent, never half-written; normal permissions."""
import json
import os
import stat

import pytest

from scalearn_lite.files import (MANIFEST, DiskFullError, atomic_dir, check_writable, damage, foreign_entries, read_json,
                              write_json)


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
