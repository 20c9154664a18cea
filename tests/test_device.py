"""Where a model runs and in what precision (scalearn_lite/device.py), tested without a GPU.

Precision: the decision function under a monkeypatched compute capability (a T4 is 7.5, an A100 8.0).

Placement, the trick: the model is moved to PyTorch's "meta" device (tensors with shapes and no data) and a forward
pre-hook on its embeddings records the device of every tensor it is given, then raises a sentinel exception (a meta
model computes nothing worth going on with). A helper that feeds the model CPU tensors records "cpu" where the
model is on "meta": exactly the mistake it would make with a model on CUDA, caught on a CPU-only machine.
"""
import types

import pytest
import torch

from conftest import tiny_config
from standins import Reached, assert_fed_on_meta, inputs_seen_by, tiny_full_run
from scalearn_lite import analysis, probing
from scalearn_lite import device as device_mod
from scalearn_lite import runs as runs_mod
from scalearn_lite import train as train_mod
from scalearn_lite.config import Preset
from scalearn_lite.device import model_device, precision_for, to_device
from scalearn_lite.models import from_config
from scalearn_lite.tasks import get_task


# ------------------------------------------------------------------------------------------ precision
@pytest.fixture
def gpu(monkeypatch):
    """A fake CUDA device of a given compute capability: gpu((7, 5)) is a T4. bf16 "supported" everywhere, as
    torch.cuda.is_bf16_supported() says on a T4 (through emulation): the decision must not read it."""
    def make(capability):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    return make


@pytest.mark.parametrize("capability, want", [((7, 5), "fp16"), ((7, 0), "fp16"), ((6, 1), "fp16"),
                                              ((8, 0), "bf16"), ((8, 6), "bf16"), ((9, 0), "bf16")])
def test_cuda_precision_is_bf16_from_ampere_on_and_fp16_below(gpu, capability, want):
    gpu(capability)  # T4 7.5, V100 7.0, P100 6.x; A100 8.0, RTX 30xx 8.6, H100 9.0
    assert precision_for("cuda") == precision_for(torch.device("cuda", 0)) == want
    assert device_mod.precision_used("fp32") == f"cuda {want}"  # what metrics.json records


def test_cpu_precision_is_the_resolved_setting_and_other_devices_fp32(monkeypatch):
    assert precision_for("cpu", "fp32") == "fp32" and precision_for("cpu", "bf16") == "bf16"
    assert precision_for("meta") == "fp32"
    with pytest.raises(ValueError, match="resolved"):
        precision_for("cpu", "auto")  # a preset's "auto" goes through resolve_cpu_precision first
    monkeypatch.setattr(device_mod, "cpu_has_bf16", lambda: True)
    assert device_mod.precision_used("auto") == "cpu bf16"
    monkeypatch.setattr(device_mod, "cpu_has_bf16", lambda: False)
    assert device_mod.precision_used("auto") == "cpu fp32"


@pytest.mark.parametrize("capability, want", [((7, 5), "fp16"), ((8, 0), "bf16")])
def test_training_asks_accelerate_for_the_decided_precision(gpu, monkeypatch, capability, want):
    """accelerate's mixed_precision="fp16" is what brings its GradScaler: the T4 gets it, an A100 bf16."""
    import accelerate

    gpu(capability)
    seen = {}
    monkeypatch.setattr(accelerate, "Accelerator", lambda **kw: seen.update(kw) or "accelerator")
    assert train_mod._accelerator() == "accelerator" and seen["mixed_precision"] == want


def test_autocast_follows_the_decision(gpu):
    assert isinstance(device_mod.autocast("cpu", "fp32"), type(device_mod.nullcontext()))
    with device_mod.autocast("cpu", "bf16"):
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16


# ------------------------------------------------------------------------------------------ placement
def test_the_trick_catches_cpu_inputs_fed_to_a_model_elsewhere():
    """The test's own check: a helper that forgets to move its inputs is caught."""
    model = from_config(tiny_config("bert"))
    with inputs_seen_by(model) as seen, pytest.raises(Reached):
        model(input_ids=torch.ones(1, 4, dtype=torch.long))  # CPU inputs, as a careless helper would pass
    assert "cpu" in seen  # (the model's own buffers, e.g. token_type_ids, come in on meta)


def test_device_helpers():
    model = from_config(tiny_config("bert"))
    assert model_device(model).type == "cpu" and model_device(torch.nn.Module()).type == "cpu"
    batch = to_device({"input_ids": torch.ones(2, 3), "n": 3}, "meta")
    assert batch["input_ids"].device.type == "meta" and batch["n"] == 3
    assert device_mod.default_device().type == ("cuda" if torch.cuda.is_available() else "cpu")


class Tok:
    pad_token_id = 1


def _feats(n=6):
    return [{"input_ids": [0, 5 + i, 7, 2], "attention_mask": [1] * 4, "label": i % 2, "group": i} for i in range(n)]


def test_predict_and_evaluate_feed_the_model_on_its_device():
    """train.predict (evaluate, the ω sliders' scorer) moves the accelerator's batches to the model's device."""
    model = from_config(tiny_config("bert"))
    model.add_classification_head("h", num_labels=2)
    with inputs_seen_by(model) as seen, pytest.raises(Reached):
        train_mod.evaluate(model, get_task("rte"), _feats(), Tok(), head="h")
    assert_fed_on_meta(seen)


def test_fusion_attention_frame_feeds_the_model_on_its_device():
    from adapters.composition import Fuse

    model = from_config(tiny_config("bert"))
    for name in ("a", "b"):
        model.add_adapter(name, config="seq_bn")
    model.add_adapter_fusion(Fuse("a", "b"), "dynamic")
    model.set_active_adapters(Fuse("a", "b"))
    batch = {"input_ids": torch.randint(5, 120, (2, 7)), "attention_mask": torch.ones(2, 7, dtype=torch.long)}
    with inputs_seen_by(model) as seen, pytest.raises(Reached):
        analysis.fusion_attention_frame(model, [batch])
    assert_fed_on_meta(seen)


def test_batches_come_on_the_in_memory_runs_device():
    """analysis.batches (notebook 04: train_fusion's model, then fusion_attention_frame and the open-the-hood cell)."""
    model = from_config(tiny_config("bert")).to("meta")
    run_ = types.SimpleNamespace(net=model, feats={"validation": _feats()}, task=get_task("rte"), tokenizer=Tok())
    batch = next(iter(analysis.batches(run_, "validation", batch_size=4)))
    assert {v.device.type for v in batch.values()} == {"meta"}


@pytest.fixture(scope="module")
def full_run(data_dir, tmp_path_factory):
    """A finished ScaLearn run on full mode's stand-ins (tiny RoBERTa, pf-mnli from a local mirror)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SCALEARN_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("SCALEARN_DATA_DIR", str(data_dir))  # OmegaScorer, run_contributions read the rows again
        root = tmp_path_factory.mktemp("full")
        mp.setenv("SCALEARN_HUB_MIRROR", str(root / "mirror"))
        path, preset = tiny_full_run(root, data_dir)
        yield path, preset, mp


@pytest.fixture
def meta_is_the_default(monkeypatch):
    """Where a loaded model goes by default (CUDA on a GPU machine) is the meta device here."""
    meta = lambda: torch.device("meta")
    monkeypatch.setattr(device_mod, "default_device", meta)
    monkeypatch.setattr(runs_mod, "default_device", meta)
    monkeypatch.setattr(probing, "default_device", meta)


def test_a_loaded_run_goes_to_the_default_device_or_the_one_asked(full_run, meta_is_the_default):
    path = full_run[0]
    assert model_device(runs_mod.load_run(path)[0]).type == "meta"  # where the mode says: CUDA on a GPU
    assert model_device(runs_mod.load_run(path, device="cpu")[0]).type == "cpu"


def test_the_omega_scorer_runs_its_run_where_it_was_loaded(full_run, meta_is_the_default):
    scorer = analysis.OmegaScorer(full_run[0], max_rows=8)
    assert model_device(scorer.net).type == "meta"
    with inputs_seen_by(scorer.net) as seen, pytest.raises(Reached):
        scorer([1.0])
    assert_fed_on_meta(seen)


def test_contributions_feed_the_model_on_its_device(full_run, meta_is_the_default, monkeypatch):
    net = runs_mod.load_run(full_run[0], device="cpu")[0]
    batch = {"input_ids": torch.tensor([[0, 5, 6, 2]]), "attention_mask": torch.ones(1, 4, dtype=torch.long)}
    with inputs_seen_by(net) as seen, pytest.raises(Reached):
        analysis.contribution_frame(net, [batch])
    assert_fed_on_meta(seen)
    seen = _spy_on_load_run(monkeypatch)
    with pytest.raises(Reached):  # a saved run: loaded on the default device, fed there
        analysis.run_contributions(full_run[0], max_rows=4)
    assert_fed_on_meta(seen)


def test_the_probe_bench_runs_the_encoder_on_the_default_device(full_run, meta_is_the_default):
    """Notebook 02's probing: the frozen encoder goes to the GPU (here: meta) and gets its batches there."""
    preset = full_run[1]
    bench = probing.ProbeBench("rte", ["AdapterHub/roberta-base-pf-mnli"], preset, include_target=False)
    assert model_device(bench.net).type == "meta" and bench.precision == "fp32"
    with inputs_seen_by(bench.net) as seen, pytest.raises(Reached):
        bench.features([0.5])
    assert_fed_on_meta(seen)


def _spy_on_load_run(monkeypatch) -> list:
    """runs.load_run, with the recording hook of inputs_seen_by on the model it returns (a helper's own model)."""
    seen, real = [], runs_mod.load_run

    def hook(module, args, kwargs):
        seen.extend(t.device.type for t in [*args, *kwargs.values()] if isinstance(t, torch.Tensor))
        raise Reached

    def load_run(*args, **kwargs):
        out = real(*args, **kwargs)
        out[0].base_model.embeddings.register_forward_pre_hook(hook, with_kwargs=True)
        return out

    monkeypatch.setattr(runs_mod, "load_run", load_run)
    return seen


def test_fusion_attention_is_averaged_on_the_cpu_whatever_the_models_device():
    """adapters returns fusion attention as CPU numpy: the token mask must meet it there, not on the model's device.
    A stand-in model on meta that answers as adapters does (numpy attention) stands for a model on a GPU."""
    import numpy as np
    from adapters.composition import Fuse

    class OnMeta(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1, device="meta"))
            self.active_adapters = Fuse("a", "b")

        def forward(self, input_ids, attention_mask, output_adapter_fusion_attentions):
            assert input_ids.device.type == "meta" and attention_mask.device.type == "meta"
            att = np.full((*input_ids.shape, 2), 0.5, dtype=np.float32)  # (B, T, S)
            return {"adapter_fusion_attentions": {"a,b": {0: {"output_adapter": att}}}}

    batch = {"input_ids": torch.ones(2, 3, dtype=torch.long), "attention_mask": torch.tensor([[1, 1, 0], [1, 1, 1]])}
    frame = analysis.fusion_attention_frame(OnMeta(), [batch])
    assert frame.to_numpy().tolist() == [[0.5, 0.5]]


def test_cpu_precision_auto_follows_the_hardware(monkeypatch):
    monkeypatch.setattr(device_mod, "cpu_has_bf16", lambda: True)
    assert device_mod.resolve_cpu_precision("auto") == "bf16"
    monkeypatch.setattr(device_mod, "cpu_has_bf16", lambda: False)
    assert device_mod.resolve_cpu_precision("auto") == "fp32"
    assert device_mod.resolve_cpu_precision("bf16") == "bf16" and device_mod.resolve_cpu_precision("fp32") == "fp32"
    with pytest.raises(ValueError, match="cpu_precision must be one of"):
        train_mod.FitConfig(lr=1.0, epochs=1, cpu_precision="half")
    with pytest.raises(ValueError, match="cpu_precision must be one of"):
        Preset(name="x", cpu_precision="fp16")
