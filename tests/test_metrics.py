"""Metrics in numpy, checked against sklearn / scipy on hand-made cases."""
import warnings

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from scalearn_lite import metrics as M
from scalearn_lite.tasks import TASKS
from scalearn_lite.metrics import decide_problem as decide

Y = np.array([0, 1, 1, 0, 1, 1, 0, 0, 1, 1])
P = np.array([0, 1, 0, 0, 1, 1, 1, 0, 1, 0])
Y3 = np.array([0, 1, 2, 2, 1, 0, 0, 2, 1, 1, 2, 0])
P3 = np.array([0, 2, 2, 1, 1, 0, 1, 2, 1, 0, 2, 0])


def close(a, b):
    return a == pytest.approx(b, abs=1e-12)


def quiet(fn, *args, **kwargs):
    """Call sklearn/scipy with their degenerate-case warnings silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def test_accuracy_and_binary_f1():
    assert close(M.accuracy(P, Y), skm.accuracy_score(Y, P))
    assert close(M.f1_binary(P, Y), skm.f1_score(Y, P))
    assert close(M.f1_binary(P, Y, positive=0), skm.f1_score(Y, P, pos_label=0))
    zeros = np.zeros(4, dtype=int)
    assert M.f1_binary(zeros, zeros) == 0.0 == quiet(skm.f1_score, zeros, zeros)
    assert M.f1_binary(zeros, np.array([0, 1, 0, 1])) == 0.0


def test_macro_f1_multiclass_and_multilabel():
    assert close(M.macro_f1(P3, Y3), skm.f1_score(Y3, P3, average="macro"))
    assert close(M.macro_f1(P, Y), skm.f1_score(Y, P, average="macro"))
    # a class predicted but never true, one never predicted
    y, p = np.array([0, 0, 1, 1]), np.array([0, 2, 1, 0])
    assert close(M.macro_f1(p, y), quiet(skm.f1_score, y, p, average="macro"))
    assert close(M.macro_f1(p, y, num_labels=4), quiet(skm.f1_score, y, p, labels=[0, 1, 2, 3], average="macro"))
    rng = np.random.default_rng(0)
    ym, pm = rng.integers(0, 2, (30, 6)), rng.integers(0, 2, (30, 6))
    ym[:, 5] = 0
    pm[:, 5] = 0  # a label column with no positives at all: F1 0, as sklearn
    assert close(M.macro_f1(pm, ym), quiet(skm.f1_score, ym, pm, average="macro"))


def test_matthews_corr_including_degenerate():
    assert close(M.matthews_corr(P, Y), skm.matthews_corrcoef(Y, P))
    assert close(M.matthews_corr(P3, Y3), skm.matthews_corrcoef(Y3, P3))
    const = np.ones_like(Y)
    assert M.matthews_corr(const, Y) == 0.0 == quiet(skm.matthews_corrcoef, Y, const)
    assert M.matthews_corr(Y, Y) == pytest.approx(1.0)
    assert M.matthews_corr(1 - Y, Y) == pytest.approx(-1.0)


def test_pearson_and_spearman_with_ties():
    x = np.array([0.1, 2.0, 2.0, 3.5, 4.0, 4.0, 4.0, 1.0])
    y = np.array([0.0, 1.5, 2.5, 2.5, 5.0, 3.0, 3.0, 0.5])
    assert close(M.pearson(x, y), stats.pearsonr(x, y)[0])
    assert close(M.spearman(x, y), stats.spearmanr(x, y)[0])
    assert np.allclose(M.rankdata(x), stats.rankdata(x))
    assert np.allclose(M.rankdata([3, 3, 3]), [2, 2, 2])
    assert M.pearson(np.ones(5), np.arange(5)) == 0.0  # constant input: 0 (scipy gives nan)
    assert M.spearman(np.arange(5), -np.arange(5.0)) == pytest.approx(-1.0)


def test_multirc_f1a_and_em():
    groups = np.array([7, 7, 7, 3, 3, 9, 9, 9, 9, 4])
    assert close(M.f1a(P, Y), skm.f1_score(Y, P))
    # per question (pred vs gold): 7 [0,1,0] vs [0,1,1] wrong; 3 right; 9 [1,1,0,1] vs [1,0,0,1] wrong; 4 wrong
    assert M.multirc_em(P, Y, groups) == pytest.approx(1 / 4)
    assert M.multirc_em(Y, Y, groups) == 1.0
    out = M.compute_metrics("multirc", P, Y, groups=groups)
    assert set(out) == {"f1a", "em"} and out["em"] == pytest.approx(0.25)
    with pytest.raises(ValueError, match="groups"):
        M.compute_metrics("multirc", P, Y)


@pytest.mark.parametrize("text, normalised", [
    ("The Eiffel Tower!", "eiffel tower"),
    ("  an  Apple, a day ", "apple day"),
    ("U.S.A.", "usa"),
    ("Theatre", "theatre"),  # "the" only as a whole word
    ("Barack   Obama's", "barack obamas"),
])
def test_record_normalisation(text, normalised):
    assert M.normalize_answer(text) == normalised


def test_record_f1_em_and_decision():
    assert M.token_f1("the Eiffel Tower", "Eiffel Tower in Paris") == pytest.approx(2 * 1 * 0.5 / 1.5)
    assert M.exact_match("The Eiffel tower.", "eiffel Tower") == 1.0
    preds = ["Obama", "the White House", "Paris"]
    golds = [["Barack Obama", "Obama"], ["White House"], []]
    assert M.record_em(preds, golds) == pytest.approx(2 / 3)
    assert M.record_token_f1(preds, golds) == pytest.approx(2 / 3)
    scores = [0.1, 0.9, 0.3, 0.8, 0.8, 0.2]
    groups = [5, 5, 5, 6, 6, 6]
    ents = ["Bob", "Alice", "Paris", "Rome", "Oslo", "Bern"]
    ans = [["Alice"]] * 3 + [["Oslo"]] * 3
    chosen, gold = M.record_decide(scores, groups, ents, ans)
    assert chosen == ["Alice", "Rome"] and gold == [["Alice"], ["Oslo"]]  # first on ties
    out = M.compute_metrics("record", scores, None, groups=groups, extra={"entity": ents, "answers": ans})
    assert out == {"f1": pytest.approx(0.5), "em": pytest.approx(0.5)}
    assert M.compute_metrics("record", scores, [0] * 6, groups, extra={"entities": ents, "answers": ans}) == out
    with pytest.raises(ValueError, match="groups"):
        M.compute_metrics("record", scores, None, extra={"entity": ents, "answers": ans})
    assert M.compute_metrics("record", chosen, gold) == out


def test_compute_metrics_per_task_and_main_metric():
    assert set(M.compute_metrics("cola", P, Y)) == {"matthews_corr", "accuracy"}
    assert close(M.compute_metrics("mrpc", P, Y)["f1"], skm.f1_score(Y, P))
    assert set(M.compute_metrics("cb", P3, Y3)) == {"accuracy", "macro_f1"}
    x, y = np.array([0.5, 2.0, 3.1, 4.9]), np.array([1.0, 2.2, 2.9, 5.0])
    assert set(M.compute_metrics("stsb", x, y)) == {"pearson", "spearman"}
    assert M.compute_metrics("copa", [0, 1, 1], [0, 1, 0]) == {"accuracy": pytest.approx(2 / 3)}
    multi = np.array([[1, 0, 1], [0, 1, 0]])
    assert M.compute_metrics("sectors", multi, multi) == {"macro_f1": 1.0}
    for name, task in TASKS.items():
        assert M.main_metric(name) == task.main_metric
    with pytest.raises(ValueError, match="same shape"):
        M.accuracy([0, 1], [0, 1, 1])
    with pytest.raises(ValueError, match="zero"):
        M.accuracy([], [])


def test_decide_turns_logits_into_predictions():
    logits = np.array([[0.1, 2.0], [3.0, -1.0]])
    assert M.decide("rte", logits).tolist() == [1, 0]
    assert M.decide("stsb", np.array([[1.5], [2.5]])).tolist() == [1.5, 2.5]
    assert M.decide("sectors", np.array([[0.3, -0.2]])).tolist() == [[1, 0]]
    assert M.multi_label_decide(np.array([0.0, 1e-3])).tolist() == [0, 1]  # sigmoid > 0.5, strictly
    scores = M.decide("record", np.array([[0.0, 0.0], [0.0, 1.0]]))
    assert scores[0] == pytest.approx(0.5) and scores[1] > 0.5


def test_best_constant_is_the_floor_a_table_is_read_against():
    assert M.best_constant("rte", [0, 0, 1, 0]) == 0.75  # majority class
    assert M.best_constant("copa", [1, 1, 0]) == pytest.approx(2 / 3)  # multiple choice: always the same choice
    assert M.best_constant("cola", [0, 1, 1, 0]) == 0.0  # Matthews correlation of a constant
    p = 0.4  # MultiRC F1a: "always yes" (all-no scores 0)
    labels = [1] * 4 + [0] * 6
    assert M.best_constant("multirc", labels) == pytest.approx(2 * p / (1 + p))
    assert M.best_constant("stsb", [0.5, 3.0]) is None  # regression has no constant floor


def test_the_constant_predictors_loss_by_hand():
    from scalearn_lite.metrics import constant_loss

    # train labels 0,0,0,1 -> add-one frequencies (4/6, 2/6); validation 0,1 -> -(log 4/6 + log 2/6) / 2
    assert constant_loss("rte", [0, 0, 0, 1], [0, 1]) == pytest.approx(-(np.log(4 / 6) + np.log(2 / 6)) / 2)
    assert constant_loss("stsb", [1.0, 3.0], [0.0, 4.0]) == pytest.approx(4.0)  # MSE of the train mean 2
    assert constant_loss("copa", [0, 1], [1]) == pytest.approx(np.log(2))


def test_a_loss_far_above_the_constant_predictors_is_warned_and_recorded():
    from scalearn_lite.metrics import LOSS_WARN_RATIO, loss_check

    rows = {"train": [{"label": 0}, {"label": 1}], "validation": [{"label": 0}, {"label": 1}]}  # constant: log 2
    fine = loss_check("rte", rows, [{"validation_loss": 0.6}, {"validation_loss": 0.9}], "run")
    assert fine["loss_vs_constant"] == pytest.approx(0.6 / np.log(2)) and "loss_warning" not in fine
    with pytest.warns(UserWarning, match="WARNING run: the best validation loss 5.545e\\+04 is 80,000.0x"):
        bad = loss_check("rte", rows, [{"validation_loss": 8e4 * np.log(2)}], "run")
    assert bad["loss_vs_constant"] > LOSS_WARN_RATIO and "training failed" in bad["loss_warning"]


def test_decide_per_problem_type():
    logits = np.array([[0.1, 2.0], [3.0, -1.0]])
    assert decide("classification", logits).tolist() == [1, 0]
    assert decide("regression", np.array([[0.5], [4.2]])).tolist() == [0.5, 4.2]
    assert decide("multi_label", np.array([[0.3, -0.1]])).tolist() == [[1, 0]]
    np.testing.assert_allclose(decide("record", logits), [1 / (1 + np.exp(-1.9)), 1 / (1 + np.exp(4.0))])
