"""AdapterHub sources: one table of ids, and a hub id (mocked by a local folder in the hub layout, no network)
loads through the same seq_bn checks as a local folder."""
import importlib
import json
import shutil
from dataclasses import fields

import pytest
import torch

from scalearn_lite import experiments, hub, notebook
from scalearn_lite.cli import build_parser
from scalearn_lite.config import get_preset
from scalearn_lite.models import load_base
from scalearn_lite.sources import read_weights, source_weights, train_source, weights_file

tr = importlib.import_module("scalearn_lite.transfer")
from scalearn_lite import runs as runs_mod
TINY = get_preset("tiny")


def test_one_table_gives_every_id_and_mnli_is_multinli():
    assert hub.hub_adapter_id("mnli") == "AdapterHub/roberta-base-multinli_pfeiffer"  # no ...-mnli_pfeiffer exists
    assert hub.hub_adapter_id("sst2") == "AdapterHub/roberta-base-sst_pfeiffer"
    assert hub.hub_adapter_id("stsb") == "AdapterHub/roberta-base-sts_b_pfeiffer"
    assert hub.hub_adapter_id("mnli", "pf") == "AdapterHub/roberta-base-pf-mnli"
    assert hub.hub_adapter_id("copa", "pf") == "AdapterHub/roberta-base-pf-copa"  # the pf set covers SuperGLUE
    assert experiments.hub_adapter_id is hub.hub_adapter_id  # no second table left
    assert notebook.HUB_ADAPTERS == hub.hub_adapter_ids("pfeiffer")
    assert notebook.source_refs(["mnli", "wsc"], hub="pf") == ["AdapterHub/roberta-base-pf-mnli", "wsc"]
    assert notebook.source_refs(["mnli"], hub=True) == ["AdapterHub/roberta-base-multinli_pfeiffer"]
    assert notebook.source_refs(["mnli"]) == ["mnli"]
    with pytest.raises(ValueError, match="no roberta-base adapter for 'copa'"):
        hub.hub_adapter_id("copa", "pfeiffer")
    with pytest.raises(ValueError, match="unknown AdapterHub set 'pff'"):
        hub.hub_adapter_id("rte", "pff")


def hub_layout(src, dest, edit=None):
    """A folder as AdapterHub's hub repos hold it: adapter_config.json + pytorch_adapter.bin (+ head), a README,
    none of our own metadata."""
    dest.mkdir()
    cfg = json.loads((src / "adapter_config.json").read_text())
    if edit:
        edit(cfg)
    (dest / "adapter_config.json").write_text(json.dumps(cfg))
    torch.save(read_weights(weights_file(src, "adapter")), dest / "pytorch_adapter.bin")
    shutil.copy(src / "head_config.json", dest / "head_config.json")
    torch.save(read_weights(weights_file(src, "head")), dest / "pytorch_model_head.bin")
    (dest / "README.md").write_text("---\ntags: [adapter-transformers]\n---\n")
    return dest


@pytest.fixture
def fake_hub(data_dir, tmp_path, monkeypatch):
    """Hub ids answered from local folders: the tiny RTE adapter as pf-rte, a Houlsby-like one as pf-bad."""
    src = train_source("rte", TINY, data_dir=data_dir, seed=0, progress=False).path
    folders = {"AdapterHub/roberta-base-pf-rte": hub_layout(src, tmp_path / "pf-rte"),
               "AdapterHub/roberta-base-pf-bad": hub_layout(src, tmp_path / "pf-bad",
                                                            lambda c: c["config"].update(mh_adapter=True))}
    asked = []

    def download(ref):
        asked.append(ref)
        if ref not in folders:
            raise ValueError(f"cannot download hub adapter {ref!r}")
        return folders[ref]

    monkeypatch.setattr(hub, "download_adapter", download)
    return src, asked


def test_a_hub_adapter_gets_the_same_seq_bn_checks_and_weights_as_its_folder(fake_hub):
    src, asked = fake_hub
    model, _ = load_base(TINY.model, TINY.num_layers)
    from_hub = source_weights(model, "AdapterHub/roberta-base-pf-rte", "rte")
    local = source_weights(model, src, "rte")
    assert asked == ["AdapterHub/roberta-base-pf-rte"]
    for a, b in zip(from_hub, local):
        assert all(torch.equal(getattr(a, f.name), getattr(b, f.name)) for f in fields(a))  # .bin hub layout: same
    with pytest.raises(ValueError, match="not a seq_bn \\(Pfeiffer\\) adapter: mh_adapter=True"):
        source_weights(model, "AdapterHub/roberta-base-pf-bad", "bad")  # checked before adapters loads it
    other, _ = load_base(TINY.model, 1)
    with pytest.raises(ValueError, match=r"weights for 2 layer\(s\) but the base model has 1"):
        source_weights(other, "AdapterHub/roberta-base-pf-rte", "rte")  # 2-layer adapter, 1-layer base


def test_a_transfer_over_a_hub_source_runs_and_reloads(fake_hub, data_dir, tmp_path):
    preset = TINY.with_(max_train=64, transfer_epochs=1)
    res = tr.transfer("mrpc", ["AdapterHub/roberta-base-pf-rte"], "scalearn_uniform_pp", preset, data_dir=data_dir,
                      out=tmp_path / "run", include_target=False, progress=False)
    cfg = json.loads((res.path / "config.json").read_text())
    assert cfg["source_refs"] == ["AdapterHub/roberta-base-pf-rte"] and cfg["sources"] == ["roberta-base-pf-rte"]
    net, *_ = runs_mod.load_run(res.path)  # the reload resolves the hub id again
    assert net.scalearn.sources == ["roberta-base-pf-rte"]


def test_reproduce_hub_sets_build_hub_jobs_and_say_scores_are_optimistic(data_dir, monkeypatch):
    seen = {}

    def stop(jobs, *a, **k):
        seen["jobs"] = jobs
        raise RuntimeError("stop before training")

    monkeypatch.setattr(experiments, "run_jobs", stop)
    for spec, want in (("hub-pf", "AdapterHub/roberta-base-pf-"), ("hub", "_pfeiffer")):
        args = build_parser().parse_args(["reproduce", "--benchmark", "glue", "--targets", "rte", "--sources", spec,
                                          "--methods", "scalearn", "--seeds", "1", "--data-dir", str(data_dir)])
        with pytest.raises(RuntimeError, match="stop before training"):
            args.func(args)
        job = seen["jobs"][0]
        assert all(want in s for s in job.sources) and not job.include_target
        assert job.sources[-1] == hub.hub_adapter_id("rte", hub.SOURCE_SPECS[spec])  # the target's own, last
    assert "optimistic" in hub.HUB_CAVEAT and "dev split" in hub.HUB_CAVEAT
    assert hub.HUB_CAVEAT in experiments.source_notes(["AdapterHub/roberta-base-pf-rte"])
