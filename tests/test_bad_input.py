"""Bad input and faults (issue 14): a clear error before any long work, naming what is wrong and how to fix
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
import torch

from scalearn_lite import cli, data
from scalearn_lite.config import get_preset
from scalearn_lite.io import atomic_dir, write_json
from scalearn_lite.tasks import get_task

sources = importlib.import_module("scalearn_lite.sources")
tr = importlib.import_module("scalearn_lite.transfer")
TINY = get_preset("tiny")
# A run of a few steps: the point of these tests is what happens around training, not what it learns.
SHORT = TINY.with_(max_train=32, max_validation=16, max_test=16, transfer_epochs=1)


class Trained(Exception):
    """Raised by a stubbed training function: the code got as far as training."""


def no_training(monkeypatch):
    """Make any stage-1 or stage-2 training raise Trained."""
    def boom(*a, **k):
        raise Trained

    monkeypatch.setattr(sources, "fit_source", boom)
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


# ---------------------------------------------------------------------------- 10. more failure tests
_HOLDER = """
import importlib.util, shutil, sys, time
spec = importlib.util.spec_from_file_location("sio", sys.argv[1])  # scalearn_lite/io.py alone: no torch to import
io = importlib.util.module_from_spec(spec)
spec.loader.exec_module(io)
with io.folder_lock(sys.argv[3], "run folder"):
    print("locked", flush=True)
    time.sleep(1.5)  # still training, as far as the other process can tell
    with io.atomic_dir(sys.argv[3]) as tmp:
        shutil.copytree(sys.argv[2], tmp, dirs_exist_ok=True)
"""