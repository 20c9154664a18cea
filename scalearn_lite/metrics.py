"""Per-task metrics in plain numpy (checked against sklearn / scipy in the tests).

Scores are fractions in [0, 1] (correlations in [-1, 1]); report them as percent elsewhere.
Degenerate cases follow sklearn: an F1 with no true or predicted positives is 0, an MCC with a constant
prediction or label is 0; a correlation with a constant input is 0 here (scipy returns nan).
"""
from __future__ import annotations

import re
import string
from collections import Counter
from typing import Any, Dict, Hashable, List, Optional, Sequence, Tuple

import numpy as np

from .tasks import Task, get_task

_PUNCT = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def _pair(predictions, labels) -> Tuple[np.ndarray, np.ndarray]:
    """Predictions and labels as numpy arrays of equal, non-zero length."""
    p, y = np.asarray(predictions), np.asarray(labels)
    if p.shape != y.shape:
        raise ValueError(f"predictions {p.shape} and labels {y.shape} must have the same shape")
    if p.size == 0:
        raise ValueError("cannot score zero predictions")
    return p, y


# ----------------------------------------------------------------------------------------------------
# Classification
# ----------------------------------------------------------------------------------------------------
def accuracy(predictions, labels) -> float:
    """Fraction of exact matches; predictions (N,) class ids, labels (N,)."""
    p, y = _pair(predictions, labels)
    return float(np.mean(p == y))


def _f1_from_counts(tp, fp, fn) -> np.ndarray:
    """F1 = 2tp / (2tp + fp + fn), 0 where the denominator is 0 (sklearn's zero_division default)."""
    tp, fp, fn = (np.asarray(v, dtype=np.float64) for v in (tp, fp, fn))
    denom = 2 * tp + fp + fn
    return np.divide(2 * tp, denom, out=np.zeros_like(denom), where=denom > 0)


def f1_binary(predictions, labels, positive: int = 1) -> float:
    """F1 of the positive class; predictions and labels (N,) with values in {0, 1}."""
    p, y = _pair(predictions, labels)
    tp = np.sum((p == positive) & (y == positive))
    fp = np.sum((p == positive) & (y != positive))
    fn = np.sum((p != positive) & (y == positive))
    return float(_f1_from_counts(tp, fp, fn))


def macro_f1(predictions, labels, num_labels: Optional[int] = None) -> float:
    """Unweighted mean of per-class F1.

    Multi-class: predictions and labels (N,) class ids; the classes are range(num_labels) if given, else
    those present in labels or predictions (sklearn's default). Multi-label: multi-hot (N, C) 0/1 arrays,
    one F1 per column (threshold scores first, e.g. with `multi_label_decide`).
    """
    p, y = _pair(predictions, labels)
    if p.ndim == 2:
        p, y = p.astype(bool), y.astype(bool)
        return float(np.mean(_f1_from_counts((p & y).sum(0), (p & ~y).sum(0), (~p & y).sum(0))))
    classes = np.arange(num_labels) if num_labels is not None else np.union1d(p, y)
    counts = [((p == c) & (y == c), (p == c) & (y != c), (p != c) & (y == c)) for c in classes]
    tp, fp, fn = (np.array([c[i].sum() for c in counts]) for i in range(3))
    return float(np.mean(_f1_from_counts(tp, fp, fn)))


def matthews_corr(predictions, labels) -> float:
    """Matthews correlation (multi-class form, as sklearn); 0 when predictions or labels are constant."""
    p, y = _pair(predictions, labels)
    classes, inv = np.unique(np.concatenate([y, p]), return_inverse=True)
    k, n = len(classes), len(y)
    confusion = np.zeros((k, k), dtype=np.float64)  # (true, predicted)
    np.add.at(confusion, (inv[:n], inv[n:]), 1)
    t_sum, p_sum, correct = confusion.sum(1), confusion.sum(0), np.trace(confusion)
    cov_yp = correct * n - t_sum @ p_sum
    cov_pp, cov_yy = n * n - p_sum @ p_sum, n * n - t_sum @ t_sum
    return 0.0 if cov_pp * cov_yy == 0 else float(cov_yp / np.sqrt(cov_yy * cov_pp))


# ----------------------------------------------------------------------------------------------------
# Regression
# ----------------------------------------------------------------------------------------------------
def pearson(predictions, labels) -> float:
    """Pearson correlation of (N,) floats; 0 if either input is constant."""
    p, y = _pair(predictions, labels)
    p, y = p.astype(np.float64) - p.mean(), y.astype(np.float64) - y.mean()
    denom = np.sqrt((p @ p) * (y @ y))
    return 0.0 if denom == 0 else float(np.clip((p @ y) / denom, -1.0, 1.0))


def rankdata(values) -> np.ndarray:
    """1-based ranks of (N,) values, ties given their average rank (scipy's method="average")."""
    v = np.asarray(values)
    order = np.argsort(v, kind="mergesort")
    sorted_v = v[order]
    starts = np.flatnonzero(np.r_[True, sorted_v[1:] != sorted_v[:-1]])  # first index of each tie block
    ends = np.r_[starts[1:], len(v)]
    avg = (starts + ends + 1) / 2.0  # mean of 1-based positions starts+1 .. ends
    ranks = np.empty(len(v), dtype=np.float64)
    ranks[order] = np.repeat(avg, ends - starts)
    return ranks


def spearman(predictions, labels) -> float:
    """Spearman rank correlation: Pearson of average ranks (ties handled as scipy does)."""
    p, y = _pair(predictions, labels)
    return pearson(rankdata(p), rankdata(y))


# ----------------------------------------------------------------------------------------------------
# MultiRC
# ----------------------------------------------------------------------------------------------------
def f1a(predictions, labels) -> float:
    """MultiRC F1a: binary F1 over all answer options; predictions and labels (N,) in {0, 1}."""
    return f1_binary(predictions, labels)


def multirc_em(predictions, labels, groups) -> float:
    """MultiRC exact match: fraction of questions (groups, (N,) ids) whose every option is right."""
    p, y = _pair(predictions, labels)
    g = np.asarray(groups)
    if g.shape != p.shape:
        raise ValueError(f"groups {g.shape} must match predictions {p.shape}")
    _, inv = np.unique(g, return_inverse=True)
    wrong = np.bincount(inv, weights=(p != y).astype(np.float64))
    return float(np.mean(wrong == 0))


# ----------------------------------------------------------------------------------------------------
# ReCoRD (SQuAD-style answer normalisation)
# ----------------------------------------------------------------------------------------------------
def normalize_answer(text: str) -> str:
    """Lowercase, drop punctuation, drop articles (a/an/the), collapse whitespace (SQuAD / ReCoRD)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def token_f1(prediction: str, gold: str) -> float:
    """Bag-of-tokens F1 between two normalised answers (0 when nothing overlaps)."""
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    same = sum((Counter(pred) & Counter(ref)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, gold: str) -> float:
    """1.0 if the normalised strings are equal, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(gold))


def _best_over_golds(score, predictions: Sequence[str], answers: Sequence[Sequence[str]]) -> float:
    """Mean over queries of the max score against any gold answer (0 for a query without answers)."""
    if len(predictions) != len(answers) or not predictions:
        raise ValueError(f"need one prediction per query: {len(predictions)} predictions, {len(answers)} "
                         "answer lists")
    return float(np.mean([max((score(p, g) for g in golds), default=0.0)
                          for p, golds in zip(predictions, answers)]))


def record_token_f1(predictions: Sequence[str], answers: Sequence[Sequence[str]]) -> float:
    """ReCoRD token F1: predictions (Q,) chosen entity per query, answers (Q,) lists of gold strings."""
    return _best_over_golds(token_f1, predictions, answers)


def record_em(predictions: Sequence[str], answers: Sequence[Sequence[str]]) -> float:
    """ReCoRD exact match after normalisation, max over each query's gold answers."""
    return _best_over_golds(exact_match, predictions, answers)


def record_decide(scores, groups, entities: Sequence[str],
                  answers: Sequence[Sequence[str]]) -> Tuple[List[str], List[List[str]]]:
    """Per query (group) the candidate entity with the highest score (first on ties).

    scores, groups, entities, answers: one per candidate row (N,). Returns (chosen entity per query,
    gold answers per query), queries in order of first appearance.
    """
    best: Dict[Hashable, Tuple[float, str, List[str]]] = {}
    for s, g, e, a in zip(np.asarray(scores, dtype=np.float64).tolist(), list(groups), entities, answers):
        if g not in best or s > best[g][0]:
            best[g] = (s, e, list(a))
    return [v[1] for v in best.values()], [v[2] for v in best.values()]


# ----------------------------------------------------------------------------------------------------
# Decisions and the single entry point
# ----------------------------------------------------------------------------------------------------
def multi_label_decide(logits, threshold: float = 0.5) -> np.ndarray:
    """Multi-hot (N, C) int predictions: sigmoid(logits) > threshold."""
    z = np.asarray(logits, dtype=np.float64)
    return (1.0 / (1.0 + np.exp(-z)) > threshold).astype(np.int64)


def decide(task, logits) -> np.ndarray:
    """Model outputs -> what compute_metrics expects, for a task (or its name); see `decide_problem`."""
    return decide_problem(get_task(task).problem, logits)


def decide_problem(problem: str, logits) -> np.ndarray:
    """Model outputs of a problem type -> what compute_metrics expects.

    classification / multiple choice: argmax over (N, C) -> (N,) ids; regression: (N,) or (N, 1) -> (N,)
    floats; multi_label: sigmoid > 0.5 -> (N, C) multi-hot; record: P(answer) score per candidate row (N,)
    (softmax of (N, 2), or the single logit of (N,)/(N, 1)), to be passed with extra= to compute_metrics.
    """
    z = np.asarray(logits, dtype=np.float64)
    if problem == "regression":
        return z.reshape(len(z))
    if problem == "multi_label":
        return multi_label_decide(z)
    if problem == "record":
        if z.ndim == 2 and z.shape[1] == 2:
            e = np.exp(z - z.max(1, keepdims=True))
            return e[:, 1] / e.sum(1)
        return z.reshape(len(z))
    return z.argmax(-1)


def compute_metrics(task, predictions, labels, groups=None, extra: Optional[Dict[str, Any]] = None
                    ) -> Dict[str, float]:
    """All of a task's metrics (task.metrics keys) from already-decided predictions.

    predictions / labels per problem:
      classification, multiple_choice (COPA): (N,) class / choice ids.  regression (STS-B): (N,) floats.
      multi_label (HumSet): (N, C) multi-hot 0/1.  MultiRC: (N,) 0/1 per answer option plus groups (N,)
      question ids (for "em").  ReCoRD: predictions (Q,) chosen entity strings and labels (Q,) lists of gold
      answers; or per-candidate scores (N,) with groups (N,) query ids and extra={"entity": (N,), "answers":
      (N,)} (the processed columns; "entities" also accepted; labels then ignored), decided by record_decide.
    """
    task = get_task(task)
    if task.problem == "record":
        return _record_metrics(predictions, labels, groups, extra)
    fns = {
        "accuracy": lambda: accuracy(predictions, labels),
        "f1": lambda: f1_binary(predictions, labels),
        "macro_f1": lambda: macro_f1(predictions, labels),
        "matthews_corr": lambda: matthews_corr(predictions, labels),
        "pearson": lambda: pearson(predictions, labels),
        "spearman": lambda: spearman(predictions, labels),
        "f1a": lambda: f1a(predictions, labels),
        "em": lambda: multirc_em(predictions, labels, _need_groups(task, groups)),
    }
    return {name: fns[name]() for name in task.metrics}


def _need_groups(task: Task, groups):
    """Groups, or a clear error for a task whose metric needs them."""
    if groups is None:
        raise ValueError(f"task {task.name!r}: metric 'em' needs groups= (one question id per row)")
    return groups


def _record_metrics(predictions, labels, groups, extra) -> Dict[str, float]:
    """ReCoRD f1 / em from chosen entities, or from per-candidate scores plus groups and extra columns."""
    if extra is not None:
        entities = extra.get("entity", extra.get("entities"))  # the processed column is named "entity"
        if groups is None or entities is None or "answers" not in extra:
            raise ValueError("ReCoRD scores need groups= and extra={'entity': ..., 'answers': ...} (one per row)")
        predictions, labels = record_decide(predictions, groups, entities, extra["answers"])
    return {"f1": record_token_f1(predictions, labels), "em": record_em(predictions, labels)}


def best_constant(task, labels) -> Optional[float]:
    """The task's main metric for the best constant prediction (one class for every row) on `labels`.

    The floor a table should be read against: the majority class for accuracy, "always yes" for MultiRC's
    F1a, 0 for Matthews correlation. None for regression, multi-label and ReCoRD, which have no such floor.
    """
    task = get_task(task)
    if task.problem not in ("classification", "multiple_choice"):
        return None
    labels = np.asarray(labels)
    score = {"accuracy": accuracy, "f1": f1_binary, "macro_f1": macro_f1, "matthews_corr": matthews_corr,
             "f1a": f1a}[task.main_metric]
    return max(float(score(np.full_like(labels, c), labels)) for c in np.unique(labels))


def main_metric(task) -> str:
    """The paper's headline metric for a task (a key of compute_metrics' result)."""
    return get_task(task).main_metric


LOSS_WARN_RATIO = 2.0  # a best validation loss this many times the constant predictor's: the training failed


def constant_loss(task, train_labels, validation_labels) -> Optional[float]:
    """The validation loss of the best input-blind predictor, in the units of train.loss_fn: cross-entropy of the
    training label frequencies (add-one smoothed) for classification, log(choices) for multiple choice, MSE of the
    training mean for regression. None for multi-label and ReCoRD."""
    task = get_task(task)
    y = np.asarray(validation_labels)
    if len(y) == 0 or len(train_labels) == 0:
        return None
    if task.problem == "regression":
        return float(np.mean((y.astype(float) - float(np.mean(train_labels))) ** 2))
    if task.problem == "multiple_choice":
        return float(np.log(task.num_labels))
    if task.problem != "classification":
        return None
    counts = np.bincount(np.asarray(train_labels, dtype=int), minlength=task.num_labels).astype(float) + 1.0
    return float(-np.mean(np.log(counts[y.astype(int)] / counts.sum())))


def loss_check(task, rows, history, what: str) -> dict:
    """{"constant_validation_loss", "loss_vs_constant"} of a run: its best validation loss over the epochs / the
    constant predictor's; plus "loss_warning" (also warned, loudly) when that ratio exceeds LOSS_WARN_RATIO.
    {} where there is no constant predictor or no validation loss."""
    import warnings

    losses = [r["validation_loss"] for r in history if r.get("validation_loss") is not None]
    const = constant_loss(task, [r["label"] for r in rows["train"]], [r["label"] for r in rows["validation"]])
    if not losses or not const:
        return {}
    ratio = min(losses) / const
    out = {"constant_validation_loss": const, "loss_vs_constant": ratio}
    if ratio > LOSS_WARN_RATIO:
        out["loss_warning"] = (f"{what}: the best validation loss {min(losses):.4g} is {ratio:,.1f}x that of a "
                               f"constant predictor ({const:.4g}): training failed (learning rate far too high?); "
                               "its scores mean nothing")
        warnings.warn("WARNING " + out["loss_warning"], stacklevel=2)
    return out
