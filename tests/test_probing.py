"""Notebook 02's probing: frozen sources at a fixed ω, only a fresh head trained on the frozen features."""
import pytest
import torch

from scalearn_lite import probing
from scalearn_lite.config import get_preset
from scalearn_lite.encoding import make_loader
from scalearn_lite.models import load_base
from scalearn_lite.tasks import get_task

TINY = get_preset("tiny")  # the embedded encoder cut to 2 layers: the same cached RTE source as conftest's


@pytest.fixture(scope="module")
def bench(data_dir):
    return probing.ProbeBench("mrpc", ["rte"], TINY, data_dir=data_dir, max_train=48, include_target=False,
                              device="cpu")


def test_a_fixed_omega_scales_the_source_and_zero_is_the_frozen_encoder_alone(bench):
    zero, one, half = bench.features([0.0]), bench.features([1.0]), bench.features([0.5])
    assert bench.features([0.0]) is zero  # cached per ω: the encoder runs once per ω
    x0, y0 = zero["train"]
    assert x0.shape == (48, bench.net.config.hidden_size) and y0.shape == (48,)
    assert torch.equal(y0, one["train"][1])  # the same rows, only the features move with ω
    assert not torch.allclose(one["train"][0], x0)  # the source changes the features ...
    assert not torch.allclose(half["train"][0], one["train"][0])  # ... by how much ω scales it
    plain, _ = load_base(TINY.model, TINY.num_layers, TINY.attention)  # a fresh encoder without any adapter
    batch = {k: v for k, v in next(iter(make_loader(bench.feats["train"][:4], bench.task, bench.tokenizer,
                                                    4))).items() if k != "labels"}
    with torch.no_grad():
        alone = plain.eval().base_model(**batch).last_hidden_state[:, 0]
    torch.testing.assert_close(x0[:4], alone, rtol=1e-5, atol=1e-5)


def test_one_omega_per_source_or_a_clear_error(bench):
    with pytest.raises(ValueError, match=r"need one ω per source \['rte'\]"):
        bench.features([0.5, 0.5])


def test_sweeps_score_every_point_of_their_grid(bench):
    one = probing.sweep_one(bench, [0.0, 1.0], epochs=1)
    assert list(one.columns) == ["source", "omega", "validation", "test"] and len(one) == 2
    assert one.validation.between(0, 1).all() and one.test.between(0, 1).all()
    two = probing.sweep_two(bench, ("rte", "rte"), [0.0, 1.0], epochs=1)
    assert len(two) == 4 and two.attrs["pair"] == ("rte", "rte")


def test_a_head_on_separable_features_learns_them():
    torch.manual_seed(0)
    x = torch.randn(64, 8)
    y = (x[:, 0] > 0).long()
    task = get_task("rte")
    head = probing.train_head(task, x, y, x, y, epochs=30, lr=1e-2)
    assert probing.head_metric(task, head, x, y) >= 0.95


def test_a_target_that_is_neither_classification_nor_regression_is_refused_before_any_work(data_dir):
    with pytest.raises(ValueError, match="probing supports classification and regression targets, not "
                                         "multiple_choice"):
        probing.ProbeBench("copa", ["rte"], TINY, data_dir=data_dir)
