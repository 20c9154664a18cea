"""The training loop's pieces: length-grouped batches, order-preserving prediction, best-epoch restore,
CPU precision, step budgets, early stopping, the fusion regulariser. (The presets' budgets are exercised by runs in
tests/test_protocol.py.)"""
from contextlib import nullcontext

import numpy as np
import pytest
import torch

from conftest import tiny_config
from scalearn_lite.models import from_config
from scalearn_lite.tasks import get_task
from scalearn_lite import train as train_mod
from scalearn_lite.train import FitConfig, fit, predict


class Tok:
    pad_token_id = 1


def feats(n=40, seed=0):
    rng = np.random.default_rng(seed)
    ids = [[0] + rng.integers(5, 120, rng.integers(3, 30)).tolist() + [2] for _ in range(n)]
    return [{"input_ids": x, "attention_mask": [1] * len(x), "label": i % 2, "group": i} for i, x in enumerate(ids)]


def model():
    torch.manual_seed(0)
    m = from_config(tiny_config("bert"))
    m.add_classification_head("h", num_labels=2)
    return m


def test_predict_returns_logits_in_input_order():
    task, m, f = get_task("rte"), model(), feats()
    logits, _ = predict(m, task, f, Tok(), head="h", batch_size=7)
    perm = np.random.default_rng(1).permutation(len(f))
    shuffled, _ = predict(m, task, [f[i] for i in perm], Tok(), head="h", batch_size=7)
    np.testing.assert_allclose(shuffled, logits[perm], atol=1e-5)
    one_by_one = np.concatenate([predict(m, task, [x], Tok(), head="h")[0] for x in f[:5]])
    np.testing.assert_allclose(one_by_one, logits[:5], atol=1e-5)


def test_fit_restores_the_best_epoch():
    task, m, f = get_task("rte"), model(), feats(48)
    params = [p for n, p in m.named_parameters() if n.startswith("heads.")]
    res = fit(m, task, f, f[:16], Tok(), FitConfig(lr=1e-2, epochs=4, batch_size=8, progress=False, select_by="loss"),
              params=params, head="h")
    assert len(res.history) == 4 and res.steps == 24
    best = min(res.history, key=lambda r: r["validation_loss"])
    assert res.best_epoch == best["epoch"]
    _, loss = predict(m, task, f[:16], Tok(), head="h")
    assert abs(loss - best["validation_loss"]) < 1e-5


def test_cpu_bf16_predicts_in_bf16_and_close_to_fp32():
    task, m, f = get_task("rte"), model(), feats()
    fp32, _ = predict(m, task, f, Tok(), head="h")
    bf16, _ = predict(m, task, f, Tok(), head="h", cpu_precision="bf16")
    assert not np.array_equal(fp32, bf16)  # bf16 matmuls really ran
    np.testing.assert_allclose(bf16, fp32, atol=0.1)


def test_cpu_bf16_casts_frozen_linears_once_with_bit_identical_results(monkeypatch):
    """CPU bf16: the frozen encoder's nn.Linear weights are cast once per fit / predict instead of at every
    autocast call; the trained adapter, history and predictions equal plain autocast's exactly, and the very fp32
    tensors are back afterwards."""
    task, f = get_task("rte"), feats(48)
    cfg = FitConfig(lr=1e-2, epochs=2, batch_size=8, progress=False, select_by="loss", cpu_precision="bf16")

    def run():
        m = model()
        m.add_adapter("a", config="seq_bn")
        m.train_adapter("a")  # encoder frozen, the adapter (and no head) trains
        frozen = next(x for x in m.modules() if isinstance(x, torch.nn.Linear) and not x.weight.requires_grad)
        before, inside = frozen.weight, []
        res = fit(m, task, f, f[:16], Tok(), cfg, params=[p for p in m.parameters() if p.requires_grad], head="h",
                  on_epoch=lambda: inside.append(frozen.weight.dtype) or {})
        assert frozen.weight is before and frozen.weight.dtype == torch.float32  # the fp32 tensor is back
        trained = {k: v.clone() for k, v in m.state_dict().items() if ".a." in k}
        assert trained and all(v.dtype == torch.float32 for v in trained.values())
        logits, _ = predict(m, task, f, Tok(), head="h", cpu_precision="bf16")
        return [{k: v for k, v in r.items() if k != "seconds"} for r in res.history], trained, logits, inside

    history, trained, logits, inside = run()
    assert inside == [torch.bfloat16] * 2  # cast while training
    monkeypatch.setattr(train_mod, "frozen_linears_cast", lambda *a: nullcontext())  # autocast casts every call
    history_ref, trained_ref, logits_ref, inside_ref = run()
    assert inside_ref == [torch.float32] * 2
    assert history == history_ref
    assert all(torch.equal(trained[k], trained_ref[k]) for k in trained)
    np.testing.assert_array_equal(logits, logits_ref)


def test_a_step_budget_overrides_epochs_as_in_the_few_shot_protocol():
    """epochs=None: epochs run until max_steps is spent (HF Trainer's max_steps), one evaluation per epoch."""
    task, m, f = get_task("rte"), model(), feats(16)
    params = [p for n, p in m.named_parameters() if n.startswith("heads.")]
    res = fit(m, task, f, f[:8], Tok(), FitConfig(lr=1e-2, epochs=None, max_steps=9, batch_size=8, progress=False),
              params=params, head="h")
    assert res.steps == 9 and len(res.history) == 5  # 2 steps per epoch: 4 full epochs + 1 step
    assert [r["steps"] for r in res.history] == [2, 4, 6, 8, 9]
    assert train_mod.step_budget(2, 3, None) == (6, 3) and train_mod.step_budget(2, 3, 4) == (4, 3)
    with pytest.raises(ValueError, match="give epochs, max_steps"):
        FitConfig(lr=1.0, epochs=None)


def test_early_stopping_on_the_metric_stops_after_patience_epochs_without_gain():
    task, m, f = get_task("rte"), model(), feats(16)
    params = [p for n, p in m.named_parameters() if n.startswith("heads.")]
    res = fit(m, task, f, f[:8], Tok(), FitConfig(lr=0.0, epochs=None, max_steps=50, batch_size=8, patience=3,
                                                 select_by="metric", progress=False), params=params, head="h")
    assert res.best_epoch == 0 and len(res.history) == 4 and res.steps == 8  # lr 0: never better than epoch 0


def test_fusion_regulariser_gives_the_same_updates_as_adapters_trainer_order():
    """adapters' AdapterTrainer calls fusion_reg.backward() after optimizer.step() and zero_grad(), so the
    regulariser's gradient joins the next step's; fit adds it to the loss from the second step on: same updates."""
    from adapters import SeqBnConfig
    from adapters.composition import Fuse

    from scalearn_lite.encoding import make_loader
    from scalearn_lite.train import loss_fn

    def build():
        torch.manual_seed(0)
        cfg = tiny_config("bert")
        cfg.hidden_dropout_prob = cfg.attention_probs_dropout_prob = 0.0
        m = from_config(cfg)
        for name in ("a", "b"):
            m.add_adapter(name, config=SeqBnConfig(reduction_factor=4))
        m.add_adapter_fusion(Fuse("a", "b"), "dynamic")
        m.add_classification_head("h", num_labels=2)
        m.train_adapter_fusion(Fuse("a", "b"))
        with torch.no_grad():  # move the value matrices off the identity, so the regulariser has a gradient
            for n, p in m.named_parameters():
                if "adapter_fusion_layer" in n and "value" in n and n.endswith("weight"):
                    p.add_(0.05 * torch.randn_like(p))
        return m

    task, f = get_task("rte"), feats(8)
    ours = build()
    params = [p for p in ours.parameters() if p.requires_grad]
    snapshots = []  # the weights after each epoch (fit restores the best epoch at the end)
    fit(ours, task, f, f, Tok(), FitConfig(lr=1e-2, epochs=3, batch_size=8, progress=False), params=params,
        head="h", extra_loss=ours.get_fusion_regularization_loss,
        on_epoch=lambda: snapshots.append([p.detach().clone() for p in params]) or {})

    theirs = build()
    params2 = [p for p in theirs.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params2, lr=1e-2, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: max(0.0, (3 - step) / 3))
    batch = next(iter(make_loader(f, task, Tok(), 8)))
    theirs.train()
    for _ in range(3):  # the trainer's order: loss backward, clip, step, zero_grad, then the regulariser's backward
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        loss_fn(task.problem, theirs(**inputs, head="h").logits, batch["labels"]).backward()
        torch.nn.utils.clip_grad_norm_(params2, 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
        theirs.get_fusion_regularization_loss().backward()
    names = [n for n, p in ours.named_parameters() if p.requires_grad]
    for n, a, b in zip(names, snapshots[-1], params2):
        assert torch.allclose(a, b, atol=1e-6), n


def test_param_groups_train_each_group_at_its_own_rate():
    """fit takes optimiser groups: Adam's first step moves each parameter by about its group's rate (|g / √g²|)."""
    task, m, f = get_task("rte"), model(), feats(8)
    head = [p for n, p in m.named_parameters() if n.startswith("heads.")]
    fast, slow = head[0], head[1:]
    before = [p.detach().clone() for p in head]
    cfg = FitConfig(lr=1e-3, epochs=1, batch_size=8, progress=False, max_grad_norm=0.0)
    res = fit(m, task, f, f, Tok(), cfg, params=[{"params": slow}, {"params": [fast], "lr": 1e-1}], head="h")
    assert res.steps == 1
    moved = [(p.detach() - b).abs().max().item() for p, b in zip(head, before)]
    assert moved[0] == pytest.approx(1e-1, rel=1e-2)  # the group's own rate
    assert max(moved[1:]) == pytest.approx(1e-3, rel=1e-2)  # FitConfig.lr for the rest


def test_schedule_sum_bounds_adams_travel():
    """Σ of the schedule's factors: (T+1)/2 under linear decay (24 steps at 6e-3: ω moves at most 0.075)."""
    assert train_mod.schedule_sum(24) == pytest.approx(12.5)
    assert 6e-3 * train_mod.schedule_sum(24) == pytest.approx(0.075)
    # warm-up over 2 of 8 steps (1/2, 1), then decay 6/6 .. 1/6
    assert train_mod.schedule_sum(8, warmup_ratio=0.25) == pytest.approx(0.5 + 1 + 21 / 6)
