"""Atomic artefact writing: complete or absent, never half-written; normal permissions."""
import json
import os
import stat

import pytest

from scalearn_lite.io import atomic_dir, read_json, write_json


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
