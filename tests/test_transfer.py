"""Stage 2 end to end on real data (tiny preset): run folders, save/reload, what trains, bad input."""
import csv
import functools
import importlib
import json

import pytest
import torch

from conftest import paper_transfer_params
from scalearn_lite.config import VARIANTS, get_preset
from scalearn_lite.models import load_base
from scalearn_lite.params import count_parameters, synthetic_config
from scalearn_lite.sources import add_task_head, read_weights, resolve_source
from scalearn_lite.encoding import encode_splits
from scalearn_lite.data import load_task_data
from scalearn_lite.tasks import get_task
from scalearn_lite.train import FitConfig, fit, predict
from standins import copy_adapter, glue_folder

tr = importlib.import_module("scalearn_lite.transfer")  # the module (the package exports the function `transfer`)
from scalearn_lite import methods as methods_mod
from scalearn_lite import runs as runs_mod
TINY = get_preset("tiny").with_(max_train=128, transfer_epochs=1)
# A run of a few steps: the point of these tests is what happens around training, not what it learns.
SHORT = get_preset("tiny").with_(max_train=32, max_validation=16, max_test=16, transfer_epochs=1)
D, LAYERS = 384, 2  # the tiny preset's base: all-MiniLM-L6-v2 cut to 2 layers


def run(tmp_path, method, target="mrpc", sources=("rte",), **kw):
    return tr.transfer(target, list(sources), method, TINY, out=tmp_path / method, progress=False, **kw)


@functools.lru_cache(maxsize=None)
def counted(num_sources: int) -> dict:
    """`scalearn-lite params` for the tiny base: counted from modules built on the meta device, nothing trained."""
    return count_parameters(synthetic_config(D, LAYERS), num_sources)


def head_params(run_path) -> int:
    return sum(t.numel() for t in read_weights(run_path / "head" / "model_head.safetensors").values())


@pytest.fixture(scope="module")
def fusion_run(data_dir, tmp_path_factory):
    """One AdapterFusion run for every test that reads one (it is the slowest method to train)."""
    return run(tmp_path_factory.mktemp("fusion"), "adapterfusion", data_dir=data_dir)


@pytest.mark.parametrize("method", ["scalearn", "scalearn_pp", "scalearn_uniform", "scalearn_uniform_pp", "fixed_omega",
                                    "average"])
def test_omega_run_folder_and_save_reload_identical_logits(data_dir, tmp_path, method):
    res = run(tmp_path, method, data_dir=data_dir)
    names = {p.name for p in res.path.iterdir()}
    assert {"config.json", "metrics.json", "omega.json", "omega.safetensors", "history.csv", "head"} <= names
    m = res.metrics
    for key in ("test_metric", "validation_metric", "metric", "transfer_params", "trainable_params",
                "wall_seconds", "steps"):
        assert key in m
    assert m["sources"] == ["rte", "mrpc"]  # the target's own adapter is a source, placed last
    omega = json.loads((res.path / "omega.json").read_text())
    assert omega["sources"] == ["rte", "mrpc"] and omega["num_layers"] == 2
    assert len(omega["per_layer_source"]) == 2 and len(omega["per_layer_source"][0]) == 2
    with open(res.path / "history.csv") as fh:
        history = list(csv.DictReader(fh))
    assert "omega/1/mrpc" in history[0]
    # what the run learned: the paper's count, the params command's count, and nothing else but the head
    assert m["transfer_params"] == paper_transfer_params(method, LAYERS, 2, D) == counted(2)[method]
    assert m["trainable_params"] == m["transfer_params"] + head_params(res.path)
    assert_reload_reproduces(res, data_dir)


def assert_reload_reproduces(res, data_dir):
    m = res.metrics
    net, tokenizer, task, cfg = runs_mod.load_run(res.path)
    feats = encode_splits(task, load_task_data(task, TINY, data_dir), tokenizer, TINY)["test"]
    logits, _ = predict(net, task, feats, tokenizer, head=methods_mod.HEAD)
    acc = float((logits.argmax(-1) == [f["label"] for f in feats]).mean())
    assert abs(acc - m["test"]["accuracy"]) < 1e-9  # the reloaded model reproduces the stored test score
    net2, *_ = runs_mod.load_run(res.path)
    assert (predict(net2, task, feats, tokenizer, head=methods_mod.HEAD)[0] == logits).all()  # same batches: bit-identical


def test_adapterfusion_run_folder_counts_and_save_reload_identical_logits(fusion_run, data_dir):
    res = fusion_run
    assert (res.path / "fusion").is_dir()
    assert (res.path / "metrics.json").is_file() and (res.path / "config.json").is_file()
    assert 0.0 <= res.metrics["test_metric"] <= 1.0
    fusion = LAYERS * (3 * D * D + 2 * D)  # 3d²+2d per layer: query, key, value and their biases
    assert res.metrics["transfer_params"] == fusion == counted(2)["adapterfusion"]
    assert res.metrics["trainable_params"] == res.metrics["transfer_params"] + head_params(res.path)
    assert_reload_reproduces(res, data_dir)  # fusion query/key/value come back, not a freshly initialised layer


def test_fit_transfer_keeps_the_model_in_memory_and_matches_the_run_folder(fusion_run, data_dir):
    res = fusion_run
    live = tr.fit_transfer("mrpc", ["rte"], "adapterfusion", TINY, data_dir=data_dir, progress=False)
    assert live.metrics()["test_metric"] == res.metrics["test_metric"]  # same seed, same training
    assert live.metrics()["transfer_params"] == res.metrics["transfer_params"]
    assert not live.net.training
    with pytest.raises(ValueError, match="trains nothing in stage 2"):
        tr.fit_transfer("mrpc", ["rte"], "adapter", TINY, data_dir=data_dir)


@pytest.mark.parametrize("method", ["adapter", "head_only", "adaptersoup", "finetune"])  # fusion: its own test
def test_baselines_write_finished_run_folders(data_dir, tmp_path, method):
    res = run(tmp_path, method, data_dir=data_dir)
    assert (res.path / "metrics.json").is_file() and (res.path / "config.json").is_file()
    assert 0.0 <= res.metrics["test_metric"] <= 1.0
    if method == "adaptersoup":
        assert res.metrics["adaptersoup"]["chosen"]


def test_only_omega_and_head_change_base_and_sources_bit_identical(data_dir):
    task = get_task("mrpc")
    refs = [resolve_source(s, TINY, data_dir=data_dir, progress=False) for s in ("rte", "mrpc")]
    net, tokenizer = load_base(TINY.model, TINY.num_layers)
    methods_mod.build_scalearn(net, ["rte", "mrpc"], refs, VARIANTS["scalearn"])
    add_task_head(net, task, methods_mod.HEAD)
    params = methods_mod.trainable(net, "scalearn")
    before = {k: v.clone() for k, v in net.state_dict().items()}
    feats = encode_splits(task, load_task_data(task, TINY, data_dir), tokenizer, TINY)
    fit(net, task, feats["train"][:64], feats["validation"], tokenizer,
        FitConfig(lr=6e-3, epochs=1, batch_size=16, progress=False), params=params, head=methods_mod.HEAD)
    after = net.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert "scalearn.omega.weight" in changed
    assert changed <= {"scalearn.omega.weight"} | {k for k in before if k.startswith(f"heads.{methods_mod.HEAD}.")}
    assert any(k.startswith("scalearn.banks.") for k in before)  # the source banks were compared too


def test_bad_input_gives_clear_errors(data_dir, tmp_path):
    with pytest.raises(ValueError, match="unknown method 'fusion'.*scalearn"):
        run(tmp_path, "fusion", data_dir=data_dir)
    with pytest.raises(ValueError, match="empty source list"):
        run(tmp_path, "scalearn", sources=(), include_target=False, data_dir=data_dir)
    with pytest.raises(ValueError, match="duplicate sources"):
        run(tmp_path, "scalearn", sources=("rte", "rte"), data_dir=data_dir)
    with pytest.raises(ValueError, match="qnli"):
        run(tmp_path, "scalearn", target="qnli", data_dir=data_dir)
    with pytest.raises(ValueError, match="neither a task name"):
        run(tmp_path, "scalearn", sources=("nosuchtask",), data_dir=data_dir)


def test_a_finished_folder_is_reused_only_for_the_same_run(data_dir, tmp_path):
    first = run(tmp_path, "head_only", data_dir=data_dir)
    stamp = (first.path / "metrics.json").stat().st_mtime_ns
    assert run(tmp_path, "head_only", data_dir=data_dir).metrics == first.metrics  # reused, not retrained
    assert (first.path / "metrics.json").stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match="other settings.*seed: saved 0, asked 1.*--force"):
        run(tmp_path, "head_only", data_dir=data_dir, seed=1)  # same folder, another run: never mixed up
    (first.path / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="corrupt"):
        run(tmp_path, "head_only", data_dir=data_dir)


def test_a_killed_run_leaves_no_finished_folder(data_dir, tmp_path, monkeypatch):
    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(tr, "evaluate", boom)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, "scalearn", data_dir=data_dir)
    assert not (tmp_path / "scalearn").exists()
    assert not [p for p in tmp_path.iterdir() if (p / "metrics.json").exists()]


@pytest.mark.parametrize("method", sorted(methods_mod.FIXED_ENCODER))
def test_a_fixed_encoder_run_is_the_same_to_the_last_bit_with_its_validation_outputs_reused(data_dir, tmp_path,
                                                                                          monkeypatch, method):
    """The head-only, average and soup baselines score the validation rows with the encoder's first outputs:
    history, checkpoint and test scores equal those of a run that recomputes them every epoch."""
    from contextlib import contextmanager, nullcontext

    real, seen = tr.reuse_eval_outputs, []

    @contextmanager
    def spy(module):
        with real(module) as counts:
            yield counts
        seen.append(dict(counts))

    kw = dict(data_dir=data_dir, progress=False)
    preset = TINY.with_(transfer_epochs=3)
    monkeypatch.setattr(tr, "reuse_eval_outputs", spy)
    reused = tr.transfer("mrpc", ["rte", "stsb"], method, preset, out=tmp_path / "reused", **kw)
    assert seen == [{"computed": 1, "reused": 2}]  # 64 validation rows = one batch, scored in 3 epochs
    monkeypatch.setattr(tr, "reuse_eval_outputs", lambda module: nullcontext())
    fresh = tr.transfer("mrpc", ["rte", "stsb"], method, preset, out=tmp_path / "fresh", **kw)
    keep = ("test", "validation", "best_epoch", "steps")
    assert {k: reused.metrics[k] for k in keep} == {k: fresh.metrics[k] for k in keep}

    def history(name):  # every column but the wall clock
        with open(tmp_path / name / "history.csv") as fh:
            return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(fh)]

    assert len(history("reused")) == 3 and history("reused") == history("fresh")


def test_the_python_api_refuses_bad_numbers_before_any_work(tmp_path):
    """transfer(seed=-1), transfer(k_shot=0) and demo(seeds=0) fail at once, naming the argument (the CLI's parser
    refuses them too); nothing is written."""
    from scalearn_lite.experiments import demo

    with pytest.raises(ValueError, match="seed must be >= 0"):
        tr.transfer("mrpc", ["rte"], "scalearn", TINY, seed=-1, out=tmp_path / "a", progress=False)
    with pytest.raises(ValueError, match="k_shot must be >= 1"):
        tr.transfer("mrpc", ["rte"], "scalearn", TINY, k_shot=0, out=tmp_path / "b", progress=False)
    with pytest.raises(ValueError, match="seeds must be >= 1"):
        demo(TINY, seeds=0, out=tmp_path / "c", progress=False)
    assert not any(tmp_path.iterdir())


def test_stage1_plan_lists_each_adapter_a_run_loads_once_per_target_and_seed(data_dir):
    """The zoo sources at seed 0, the target's own adapter at seed 0 for every seed (paper) or per seed; the Adapter
    row's own adapter at its seed; adapter folders need no stage 1."""
    from scalearn_lite.sources import Stage1Adapter
    from scalearn_lite.transfer import stage1_plan

    tiny = get_preset("tiny")
    own0 = Stage1Adapter("mrpc", 0, None, "target")
    assert stage1_plan("mrpc", ["rte", "stsb"], "scalearn", tiny, seed=2, data_dir=data_dir) == [
        Stage1Adapter("rte"), Stage1Adapter("stsb"), own0]
    assert stage1_plan("mrpc", ["rte"], "scalearn", tiny.with_(own_adapter_seed="per_seed"), seed=2,
                       data_dir=data_dir)[-1] == Stage1Adapter("mrpc", 2, None, "target")
    assert stage1_plan("mrpc", ["rte"], "adapter", tiny, seed=1, data_dir=data_dir) == [
        Stage1Adapter("mrpc", 1, None, "target")]
    assert stage1_plan("mrpc", ["rte"], "scalearn", tiny, seed=0, data_dir=data_dir, include_target=False) == [
        Stage1Adapter("rte")]


# --------------------------------------- a diverging loss; paths with spaces and non-ASCII characters
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
