"""Pinned hub datasets and data identity in config.json, safetensors run folders (old .pt/.bin ones still load)."""
import importlib
import json

import pytest
import torch

from scalearn_lite import data as data_mod
from scalearn_lite import tasks
from scalearn_lite.config import get_preset
from scalearn_lite.encoding import encode
from scalearn_lite.sources import read_weights
from scalearn_lite.data import load_task_data
from scalearn_lite.train import predict

tr = importlib.import_module("scalearn_lite.transfer")
from scalearn_lite import methods as methods_mod
from scalearn_lite import runs as runs_mod
TINY = get_preset("tiny").with_(max_train=128, transfer_epochs=1)  # as test_transfer: same cached sources


# ---------------------------------------------------------------------------------- item 2: pinned datasets
def test_hub_datasets_load_at_a_fixed_revision(monkeypatch):
    import datasets

    calls = []

    class Split(list):
        def to_list(self):
            return list(self)

    def fake_load(path, config, **kw):
        calls.append((path, config, kw))
        return {"train": Split([{"x": 1}]), "validation": Split([{"x": 2}])}

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    monkeypatch.setattr(data_mod.locations, "hub_reachable", lambda: True)
    data_mod.load_hub("rte")
    data_mod.load_hub("cb")
    assert [(p, c, kw["revision"]) for p, c, kw in calls] == [
        ("nyu-mll/glue", "rte", tasks.GLUE_REVISION), ("aps/super_glue", "cb", tasks.SUPERGLUE_REVISION)]
    for rev in (tasks.GLUE_REVISION, tasks.SUPERGLUE_REVISION):
        assert len(rev) == 40 and int(rev, 16) >= 0  # a commit, not a branch name
    assert all(t.hub_revision for t in tasks.TASKS.values() if t.hub_path)
    assert data_mod.data_identity("cb", source="hub") == {"hub": "aps/super_glue", "config": "cb",
                                                          "revision": tasks.SUPERGLUE_REVISION}


# ------------------------------------------------------------------------------ item 4: no pickle in a run
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
