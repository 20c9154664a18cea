"""Processing: hub-schema rows -> uniform model inputs {text_a, text_b, label, group, (+extras)}, the tasks'
input templates (COPA's question, WSC's marked pronoun, ReCoRD's candidates, MultiRC's groups).
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Sequence, Tuple

from ..tasks import Task, get_task
from .locations import Rows
from .readers import expected_labels, load_raw


def label_names_from_rows(task, rows: Rows) -> Tuple[str, ...]:
    """HumSet label names: every label seen in the rows' label column, sorted."""
    task = get_task(task)
    return tuple(sorted({label for row in rows for label in row[task.label_field]}))


def resolve_labels(task, data_dir=None, source: str = "auto") -> Task:
    """The task with label names filled in: HumSet's come from its train split, others are unchanged."""
    task = get_task(task)
    if not task.needs_label_names_from_data:
        return task
    return task.with_label_names(label_names_from_rows(task, load_raw(task, data_dir, source)["train"]))


def _mark_pronoun(text: str, index: int) -> str:
    """WSC template: the word at `index` (whitespace tokens) wrapped in asterisks, "*him*"."""
    words = text.split()
    if not 0 <= index < len(words):
        raise ValueError(f"WSC span2_index {index} is outside the text's {len(words)} words: {text!r}")
    words[index] = f"*{words[index]}*"
    return " ".join(words)


def _copa_row(row: Dict[str, Any]) -> Dict[str, Any]:
    """COPA: premise + " because" (cause) / " so" (effect), paired with each choice; label = choice index."""
    joiner = "because" if row["question"] == "cause" else "so"
    stem = f"{row['premise']} {joiner}"
    return {"text_a": stem, "text_b": None, "choices_a": [stem, stem],
            "choices_b": [row["choice1"], row["choice2"]], "label": int(row["label"])}


def _record_binary_rows(row: Dict[str, Any]) -> Rows:
    """ReCoRD: one binary row per candidate entity (label 1 if it is a gold answer), grouped by query id."""
    passage = row["passage"].replace("@highlight\n", "- ")
    answers = list(row["answers"])
    return [{"text_a": passage, "text_b": row["query"].replace("@placeholder", entity),
             "label": int(entity in answers), "group": int(row["idx"]["query"]), "entity": entity,
             "answers": answers} for entity in dict.fromkeys(row["entities"])]


def _multi_hot(labels: Sequence[str], names: Sequence[str]) -> List[int]:
    """Multi-hot vector over `names` (labels not in names are ignored by the caller's check)."""
    index = {name: i for i, name in enumerate(names)}
    vec = [0] * len(names)
    for label in labels:
        if label in index:
            vec[index[label]] = 1
    return vec


def _process_one(task: Task, row: Dict[str, Any], i: int) -> Dict[str, Any]:
    """One hub-schema row -> {text_a, text_b, label, group} (+ choices for COPA)."""
    name = task.name
    if name == "copa":
        return {**_copa_row(row), "group": i}
    if name == "wic":
        a, b = f"{row['word']}: {row['sentence1']}", f"{row['word']}: {row['sentence2']}"
    elif name == "wsc":
        a, b = _mark_pronoun(row["text"], row["span2_index"]), row["span1_text"]
    elif name == "multirc":
        a, b = row["paragraph"], f"{row['question']} {row['answer']}"
        return {"text_a": a, "text_b": b, "label": int(row["label"]), "group": int(row["idx"]["question"])}
    elif task.benchmark == "humset":
        label = _multi_hot(row[task.label_field], task.label_names)
        return {"text_a": row["excerpt"], "text_b": None, "label": label, "group": i}
    else:
        fields = task.input_fields
        a, b = row[fields[0]], (row[fields[1]] if len(fields) > 1 else None)
    label = float(row["label"]) if task.problem == "regression" else int(row["label"])
    return {"text_a": a, "text_b": b, "label": label, "group": i}


def process_rows(task, rows: Rows) -> Rows:
    """Hub-schema rows -> model inputs with columns text_a, text_b (str or None), label, group.

    label: int class id; float for regression; multi-hot list[int] for HumSet; COPA adds choices_a/choices_b
    (one (a, b) pair per choice, label = correct choice); ReCoRD gives one binary row per candidate entity
    with `entity` and `answers`; group = MultiRC question id / ReCoRD query id, else the row's position.
    """
    task = get_task(task)
    if task.needs_label_names_from_data:
        raise ValueError(f"task {task.name!r} needs label names from its data: "
                         "use resolve_labels(task, data_dir) or load_splits()")
    if task.name == "record":
        return [out for row in rows for out in _record_binary_rows(row)]
    out = [_process_one(task, row, i) for i, row in enumerate(rows)]
    _check_labels(task, out)
    return out


def _check_labels(task: Task, rows: Rows) -> None:
    """Every processed label is a class id in 0..C-1 (or a finite number for regression): else name the row."""
    if task.problem not in ("classification", "multiple_choice", "regression"):
        return
    n = len(task.label_names)
    for i, row in enumerate(rows):
        y = row["label"]
        ok = math.isfinite(y) if task.problem == "regression" else 0 <= y < n
        if not ok:
            raise ValueError(f"task {task.name!r}, row {i}: label {y!r} is not one of {expected_labels(task)}")


def _features(task: Task):
    """datasets.Features for processed rows (ClassLabel labels so splits can be stratified)."""
    from datasets import ClassLabel, Features, Sequence as Seq, Value

    feats = {"text_a": Value("string"), "text_b": Value("string"), "group": Value("int64")}
    if task.problem == "regression":
        feats["label"] = Value("float64")
    elif task.problem == "multi_label":
        feats["label"] = Seq(Value("int64"))
    else:
        feats["label"] = ClassLabel(names=list(task.label_names))
    if task.problem == "multiple_choice":
        feats["choices_a"], feats["choices_b"] = Seq(Value("string")), Seq(Value("string"))
    if task.problem == "record":
        feats["entity"], feats["answers"] = Value("string"), Seq(Value("string"))
    return Features(feats)


def to_dataset(task, rows: Rows):
    """Processed rows -> datasets.Dataset with this task's features (works for zero rows)."""
    from datasets import Dataset

    task = get_task(task)
    feats = _features(task)
    return Dataset.from_dict({k: [r[k] for r in rows] for k in feats}, features=feats)
