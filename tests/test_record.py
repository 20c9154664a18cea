"""metrics.json's one record: stage 1 and stage 2 (the Adapter row included) share the fields of a fit."""
import pytest

from scalearn_lite.config import get_preset
from scalearn_lite.record import FIT_FIELDS, fit_record, stage1_record, transfer_record
from scalearn_lite.tasks import get_task
from scalearn_lite.train import FitResult

TINY = get_preset("tiny")
ROWS = {"train": [{"label": 0}, {"label": 1}] * 4, "validation": [{"label": 0}, {"label": 1}], "test": [{"label": 1}]}


def fitted(val_loss: float = 0.5) -> FitResult:
    return FitResult(history=[{"epoch": 0, "validation_loss": val_loss}], best_epoch=0,
                     best_validation={"accuracy": 0.75, "loss": val_loss}, steps=6, step_budget=8, seconds=1.5)


def test_a_fit_record_holds_the_fit_fields_and_nothing_else():
    rec = fit_record(get_task("rte"), TINY, fitted(), {"accuracy": 0.5}, ROWS)
    assert tuple(rec) == FIT_FIELDS
    assert rec["metric"] == "accuracy" and rec["rows"] == {"train": 8, "validation": 2, "test": 1}
    assert (rec["steps"], rec["step_budget"], rec["best_epoch"]) == (6, 8, 0)
    assert rec["precision"].startswith(("cpu ", "cuda ")) and rec["base"]


def test_stage1_adds_its_own_fields_and_says_when_the_loss_did_not_beat_the_constant():
    good = stage1_record(get_task("rte"), TINY, fitted(0.5), {"accuracy": 0.5}, ROWS, seed=2, k_shot=None,
                         role="source")
    assert {k: good[k] for k in FIT_FIELDS} == fit_record(get_task("rte"), TINY, fitted(0.5), {"accuracy": 0.5}, ROWS)
    assert (good["task"], good["seed"], good["role"], good["seconds"]) == ("rte", 2, "source", 1.5)
    assert good["loss_vs_constant"] == pytest.approx(0.5 / good["constant_validation_loss"])
    assert "loss_warning" not in good
    with pytest.warns(UserWarning):
        bad = stage1_record(get_task("rte"), TINY, fitted(50.0), {"accuracy": 0.5}, ROWS, seed=0, k_shot=None,
                            role="source")
    assert "loss_warning" in bad


def test_a_transfer_record_reads_its_main_scores_from_the_fit_it_is_given():
    fit = fit_record(get_task("stsb"), TINY, FitResult(best_validation={"pearson": 0.6}, seconds=2.0),
                     {"pearson": 0.7, "spearmanr": 0.65}, ROWS)
    rec = transfer_record(fit, target="stsb", method="scalearn", seed=1, k_shot=None, sources=("rte", "stsb"),
                          transfer_params=10, trainable_params=20, train_seconds=2.0, wall_seconds=3.0, omega_lr=0.1)
    assert (rec["test_metric"], rec["validation_metric"]) == (0.7, 0.6)
    assert rec["sources"] == ["rte", "stsb"] and rec["omega_lr"] == 0.1
    assert {k: rec[k] for k in FIT_FIELDS} == fit
