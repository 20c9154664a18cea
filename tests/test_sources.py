"""Stage 1 on real data: only adapter + head train, it learns, its folder reloads in plain adapters, cache reuse (keyed
by the data), sources checked before any training, the names and order of sources."""
import importlib
import json
import re

import pytest
import torch

from scalearn_lite import data
from scalearn_lite.config import get_preset
from scalearn_lite.encoding import encode
from scalearn_lite.models import load_base
from scalearn_lite.sources import check_adapter_folder, fit_source, source_dir, source_weights, train_source
from scalearn_lite.data import load_task_data
from scalearn_lite.tasks import get_task
from scalearn_lite.files import write_json
from scalearn_lite.train import predict
from standins import Trained, copy_adapter, glue_folder, no_training

sources = importlib.import_module("scalearn_lite.sources")
tr = importlib.import_module("scalearn_lite.transfer")
TINY = get_preset("tiny")


def test_only_adapter_and_head_train_and_it_beats_the_majority_class(data_dir):
    task = get_task("sst2")
    rows = load_task_data(task, TINY, data_dir)
    fresh, _ = load_base(TINY.model, TINY.num_layers)
    net, tokenizer, result, test = fit_source(task, TINY, rows, seed=0, progress=False)
    before = {n: p for n, p in fresh.named_parameters()}
    changed = []
    for n, p in net.named_parameters():
        if n in before:
            assert torch.equal(p, before[n]), f"base weight {n} changed"
        else:
            changed.append(n)
    assert changed and all(".adapters.sst2." in n or n.startswith("heads.sst2.") for n in changed)
    labels = [r["label"] for r in rows["test"]]
    majority = max(labels.count(0), labels.count(1)) / len(labels)
    assert test["accuracy"] > majority + 0.05, (test, majority)
    assert result.best_epoch >= 0 and len(result.history) >= 1


def test_saved_folder_reloads_with_plain_adapters_to_identical_logits(data_dir, tmp_path):
    res = train_source("mrpc", TINY, data_dir=data_dir, seed=0, out=tmp_path / "mrpc", progress=False)
    files = {p.name for p in res.path.iterdir()}
    assert {"adapter_config.json", "adapter.safetensors", "head_config.json", "model_head.safetensors",
            "metrics.json", "history.csv"} <= files
    assert not [f for f in files if f.endswith((".bin", ".pt"))]  # nothing that needs pickle
    metrics = json.loads((res.path / "metrics.json").read_text())
    assert metrics["metric"] == "accuracy" and 0 <= metrics["test"]["accuracy"] <= 1
    task = get_task("mrpc")
    rows = load_task_data(task, TINY, data_dir)["test"][:40]
    logits = []
    for _ in range(2):  # two independent plain-adapters loads: same logits, and = the metrics we stored
        model, tokenizer = load_base(TINY.model, TINY.num_layers)
        name = model.load_adapter(str(res.path), with_head=True, use_safetensors=True)
        model.set_active_adapters(name)
        feats = encode(task, rows, tokenizer, TINY.max_length)
        logits.append(predict(model, task, feats, tokenizer, head=name)[0])
    assert (logits[0] == logits[1]).all()
    full = load_task_data(task, TINY, data_dir)["test"]
    model, tokenizer = load_base(TINY.model, TINY.num_layers)
    name = model.load_adapter(str(res.path), with_head=True, use_safetensors=True)
    model.set_active_adapters(name)
    all_logits = predict(model, task, encode(task, full, tokenizer, TINY.max_length), tokenizer, head=name)[0]
    acc = float((all_logits.argmax(-1) == [r["label"] for r in full]).mean())
    assert abs(acc - metrics["test"]["accuracy"]) < 1e-9


def test_cache_is_reused_and_a_different_seed_is_not(data_dir):
    first = train_source("rte", TINY, data_dir=data_dir, seed=0, progress=False)
    assert first.path == source_dir("rte", TINY, 0, data_dir=data_dir)
    again = train_source("rte", TINY, data_dir=data_dir, seed=0, progress=False)
    assert again.cached and again.metrics == first.metrics
    stamp = (first.path / "metrics.json").stat().st_mtime_ns
    assert (again.path / "metrics.json").stat().st_mtime_ns == stamp
    assert source_dir("rte", TINY, 1, data_dir=data_dir) != first.path
    leftovers = [p for p in first.path.parent.iterdir() if p.name.startswith(".")]
    assert not leftovers, f"temporary folders left behind: {leftovers}"


def test_dev_only_task_trains_as_a_source_but_has_no_test(data_dir, tmp_path):
    res = train_source("qnli", TINY.with_(source_max_train=64, source_epochs=1), data_dir=data_dir, out=tmp_path / "q",
                       progress=False)
    assert res.metrics["test"] == {} and res.metrics["rows"]["test"] == 0 and res.metrics["rows"]["train"] == 64


def test_bad_source_folders_give_clear_errors(data_dir, tmp_path):
    model, _ = load_base(TINY.model, TINY.num_layers)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        check_adapter_folder(tmp_path / "nope", model, "x")
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "adapter_config.json").write_text("{not json")
    (corrupt / "pytorch_adapter.bin").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="corrupt"):
        source_weights(model, corrupt, "x")
    src = train_source("rte", TINY, data_dir=data_dir, seed=0, progress=False).path
    other, _ = load_base(TINY.model, 1)  # same family, another layer count
    with pytest.raises(ValueError, match="trained on base model 'all-MiniLM-L6-v2-L2'"):
        source_weights(other, src, "rte")
    bad = tmp_path / "wide"
    bad.mkdir()
    cfg = json.loads((src / "adapter_config.json").read_text())
    cfg["hidden_size"] = 768
    (bad / "adapter_config.json").write_text(json.dumps(cfg))
    (bad / "adapter.safetensors").write_bytes((src / "adapter.safetensors").read_bytes())
    with pytest.raises(ValueError, match="hidden size 768 but the base model has 384"):
        source_weights(model, bad, "wide")


def test_another_adapter_architecture_is_refused(data_dir, tmp_path):
    model, _ = load_base(TINY.model, TINY.num_layers)
    src = train_source("rte", TINY, data_dir=data_dir, seed=0, progress=False).path
    other = tmp_path / "houlsby_like"
    other.mkdir()
    cfg = json.loads((src / "adapter_config.json").read_text())
    cfg["config"]["mh_adapter"] = True  # an adapter after attention too: not a seq_bn (Pfeiffer) adapter
    (other / "adapter_config.json").write_text(json.dumps(cfg))
    (other / "adapter.safetensors").write_bytes((src / "adapter.safetensors").read_bytes())
    with pytest.raises(ValueError, match="not a seq_bn \\(Pfeiffer\\) adapter: mh_adapter=True"):
        source_weights(model, other, "other")


def test_stage2_settings_do_not_retrain_sources(data_dir):
    first = train_source("rte", TINY, data_dir=data_dir, seed=0, progress=False)
    again = train_source("rte", TINY.with_(transfer_epochs=7, transfer_lr=1e-2, fusion_lr=1e-3), data_dir=data_dir,
                         seed=0, progress=False)
    assert again.cached and again.path == first.path


def test_the_attention_kernel_is_part_of_the_stage1_cache_key(data_dir):
    """Eager and SDPA draw the same dropout but round differently: an adapter trained with one is not the other's."""
    eager = train_source("rte", TINY.with_(attention="eager"), data_dir=data_dir, seed=0, progress=False)
    sdpa = train_source("rte", TINY.with_(attention="sdpa"), data_dir=data_dir, seed=0, progress=False)
    assert eager.metrics["attention"] == "eager"
    assert not sdpa.cached and sdpa.metrics["attention"] == "sdpa"  # retrained, not taken from the eager one


def test_one_source_named_twice_is_refused_and_glue_prefix_is_the_task(tmp_path):
    from scalearn_lite.sources import order_sources, resolve_source

    with pytest.raises(ValueError, match=r"duplicate sources \['CoLA', 'cola'\]"):
        order_sources(get_task("rte"), ["cola", "CoLA"])
    with pytest.raises(ValueError, match="duplicate sources"):
        order_sources(get_task("rte"), ["glue/cola", "cola"])
    folder = tmp_path / "a"
    folder.mkdir()
    with pytest.raises(ValueError, match="duplicate sources"):
        order_sources(get_task("rte"), [str(folder), str(tmp_path / "." / "a")])
    assert order_sources(get_task("rte"), ["glue/cola"]) == ["glue/cola", "rte"]


def test_a_missing_hub_source_is_found_before_any_source_trains(data_dir, tmp_path, monkeypatch):
    import importlib

    from scalearn_lite.sources import training as sources_mod  # where resolve_source calls train_source
    tr = importlib.import_module("scalearn_lite.transfer")

    def boom(*a, **k):
        raise AssertionError("a source trained first")

    monkeypatch.setattr(sources_mod, "fit_source", boom)
    monkeypatch.setattr(sources_mod, "train_source", boom)
    monkeypatch.setenv("SCALEARN_ALLOW_UNTRUSTED_HUB", "1")  # trusted: what matters here is that it is missing
    with pytest.raises(ValueError, match="cannot download hub adapter 'evil/nonexistent'"):
        tr.transfer("rte", ["sst2", "evil/nonexistent"], "scalearn", TINY, data_dir=data_dir, out=tmp_path / "run",
                    progress=False)
    assert not (tmp_path / "run").exists()


def test_a_learning_rate_far_too_high_is_warned_and_recorded_in_metrics_json(data_dir, tmp_path):
    preset = TINY.with_(source_max_train=64, max_validation=32, max_test=16, source_epochs=1, source_lr=1e4)
    with pytest.warns(UserWarning, match="WARNING adapter for rte: the best validation loss .* constant predictor"):
        res = train_source("rte", preset, data_dir=data_dir, out=tmp_path / "rte", progress=False)
    saved = json.loads((res.path / "metrics.json").read_text())
    assert saved["loss_vs_constant"] > 2 and "training failed" in saved["loss_warning"]


def test_a_negative_seed_is_refused_before_any_work(data_dir, tmp_path):
    with pytest.raises(ValueError, match="seed must be >= 0, got -1"):
        train_source("rte", TINY, data_dir=data_dir, seed=-1, out=tmp_path / "rte", progress=False)
    assert not (tmp_path / "rte").exists()


def _data_copy(data_dir, dest, drop_last_train_row=False):
    """A second data folder with RTE's files: byte-identical, or with the last training row dropped."""
    folder = dest / "glue_data" / "RTE"
    folder.mkdir(parents=True)
    for name in ("train.tsv", "dev.tsv"):
        text = (data_dir / "glue_data" / "RTE" / name).read_text(encoding="utf-8")
        if drop_last_train_row and name == "train.tsv":
            text = "".join(text.splitlines(keepends=True)[:-1])
        (folder / name).write_text(text, encoding="utf-8")
    return dest


def test_a_stage1_folder_is_keyed_by_the_data_it_was_trained_on(data_dir, tmp_path):
    """Another data folder with other RTE rows gets its own cache folder (training there no longer overwrites the
    adapter every finished run was checked against); a byte-identical copy elsewhere shares it."""
    same = _data_copy(data_dir, tmp_path / "same")
    other = _data_copy(data_dir, tmp_path / "other", drop_last_train_row=True)
    for role in ("source", "target"):
        here = source_dir("rte", TINY, role=role, data_dir=data_dir)
        assert source_dir("rte", TINY, role=role, data_dir=same) == here  # the content decides, not the path
        elsewhere = source_dir("rte", TINY, role=role, data_dir=other)
        assert elsewhere != here and elsewhere.parent.parent == here.parent.parent and elsewhere.name == "seed0"
        assert re.search(r"-d[0-9a-f]{8}$", here.parent.name)


@pytest.mark.slow
def test_training_on_a_modified_data_copy_leaves_the_original_adapter_alone(data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("SCALEARN_CACHE_DIR", str(tmp_path / "cache"))
    preset = TINY.with_(source_max_train=64, source_epochs=1)
    first = train_source("rte", preset, data_dir=data_dir, progress=False)
    before = (first.path / "adapter.safetensors").read_bytes()
    other = _data_copy(data_dir, tmp_path / "other", drop_last_train_row=True)
    second = train_source("rte", preset, data_dir=other, progress=False)
    assert second.path != first.path and not second.cached
    again = train_source("rte", preset, data_dir=data_dir, progress=False)
    assert again.cached and again.path == first.path  # the original command reuses its adapter, nothing retrained
    assert (first.path / "adapter.safetensors").read_bytes() == before


# ------------------------------------------------------ the stage-1 cache key holds the data identity
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


# ---------------------------------------------------------------- sources checked before any training
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


# -------------------------------------------------------------- a corrupt cached adapter is retrained
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


# ---------------------------------------------------------- names of folder sources, --exclude-target
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


def test_exclude_target_with_only_the_target_as_source_says_so():
    with pytest.raises(ValueError, match="the only source given, 'rte', is the target 'rte' itself, which "
                                         "--exclude-target"):
        sources.order_sources(get_task("rte"), ["rte"], include_target=False)
