"""The paper's splits: the official train split 90/10 (seed 42, stratified or grouped) into train and validation,
the official dev split as test; subsampling and k-shot samples.
"""
from __future__ import annotations

import math
import random
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..tasks import Task, get_task
from .locations import Rows, choose_source, describe_source, has_train, local_paths, may_train_on_dev
from .readers import load_local, load_raw
from .templates import label_names_from_rows, process_rows, to_dataset

if TYPE_CHECKING:
    from ..config import Preset


VALIDATION_FRACTION = 0.1  # paper: 10% of the official train split for early stopping / model selection
SPLIT_SEED = 42  # paper: the 90/10 split uses seed 42


def check_source_data(task, data_dir=None, source: str = "auto") -> None:
    """Raise the load error now (no reading) if a stage-1 adapter of `task` could not get its local training data."""
    task = get_task(task)
    kind, root = choose_source(task, data_dir, source)
    if kind != "local" or task.benchmark == "humset":
        return  # the hub has every split; HumSet's files are checked when read
    paths = local_paths(task, root)
    if not paths["test"].is_file():
        load_local(task, root)  # raises its FileNotFoundError naming the paths
    if not paths["train"].is_file() and not may_train_on_dev(task):
        raise no_train_error(task, describe_source(task, data_dir, source), paths)


def _stratifiable(task: Task) -> bool:
    """Labels are class ids (classification, multiple choice, ReCoRD binary rows)."""
    return task.problem in ("classification", "multiple_choice", "record")


def _column(ds, name: str) -> list:
    """One column of a Dataset as a Python list (fast path: arrow, not row-by-row iteration)."""
    return ds.select_columns([name]).to_dict()[name]


def _group_split(ds, fraction: float, seed: int):
    """(train, validation) with whole groups on one side: ceil(fraction * n_groups) groups to validation."""
    groups = _column(ds, "group")
    unique = np.asarray(list(dict.fromkeys(groups)))
    held = set(np.random.default_rng(seed).permutation(unique)[: math.ceil(fraction * len(unique))].tolist())
    in_val = np.fromiter((g in held for g in groups), dtype=bool, count=len(groups))
    return ds.select(np.flatnonzero(~in_val)), ds.select(np.flatnonzero(in_val))


def _shuffle_split(n_train: int, n_test: int, seed: int, labels: Optional[list] = None
                   ) -> Tuple[np.ndarray, np.ndarray]:
    """(train, test) indices drawn exactly as `datasets.Dataset.train_test_split(shuffle=True, seed=seed)`
    draws them (stratified by `labels` when given and possible), i.e. the split the paper's code used,
    without that method's slow row-by-row column read.
    """
    from datasets.utils.stratify import stratified_shuffle_split_generate_indices

    if labels is not None:
        try:
            rng = np.random.default_rng(seed)
            train, test = next(stratified_shuffle_split_generate_indices(np.asarray(labels), n_train, n_test, rng))
            return np.asarray(train, dtype=np.int64), np.asarray(test, dtype=np.int64)
        except ValueError:  # a class with < 2 rows, or fewer rows than classes: plain shuffle instead
            pass
    perm = np.random.default_rng(seed).permutation(n_train + n_test)
    return perm[n_test:], perm[:n_test]


def split_train_validation(task, ds, seed: int = SPLIT_SEED, fraction: float = VALIDATION_FRACTION):
    """The paper's 90/10 split of an official train split -> (train, validation) datasets.

    Grouped tasks (MultiRC, ReCoRD) split by group; class labels are stratified with the same draw as
    datasets' `train_test_split(test_size=0.1, seed=42, stratify_by_column="label")` in the paper's code;
    regression / multi-label: plain seeded shuffle. Validation gets ceil(10%) of the rows (or groups).
    """
    task = get_task(task)
    if len(ds) < 2:
        raise ValueError(f"task {task.name!r}: cannot split {len(ds)} row(s) into train and validation")
    if task.group_field is not None:
        return _group_split(ds, fraction, seed)
    n_test = math.ceil(fraction * len(ds))
    labels = _column(ds, "label") if _stratifiable(task) else None
    train, validation = _shuffle_split(len(ds) - n_test, n_test, seed, labels)
    return ds.select(train), ds.select(validation)


def subsample(task, ds, n: Optional[int], seed: int = SPLIT_SEED):
    """At most n rows of ds (original order kept), seeded; stratified by label for class labels when possible."""
    task = get_task(task)
    if n is None or n >= len(ds):
        return ds
    if n < 1:
        raise ValueError(f"max_train must be >= 1, got {n}")
    labels = _column(ds, "label") if _stratifiable(task) else None
    keep, _ = _shuffle_split(n, len(ds) - n, seed, labels)
    return ds.select(np.sort(keep))


def _is_class_label(value: Any) -> bool:
    """True for integer class ids (not bools, floats or multi-hot lists)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _k_shot_indices(labels: Sequence[Any], k: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of k rows: round-robin over classes in random order (balanced as far as rows allow)."""
    if not all(_is_class_label(y) for y in labels):
        return np.sort(rng.permutation(len(labels))[:k])
    pools = {c: list(rng.permutation(np.flatnonzero(np.asarray(labels) == c))) for c in sorted(set(labels))}
    chosen: List[int] = []
    while len(chosen) < k:
        for c in rng.permutation(sorted(pools)).tolist():
            if pools[c] and len(chosen) < k:
                chosen.append(int(pools[c].pop()))
    return np.sort(np.asarray(chosen, dtype=np.int64))


def sample_k_shot(rows_or_dataset, k: int, seed: int = 0):
    """k rows of a list of dicts (-> list) or a datasets.Dataset (-> Dataset), in their original order, seeded.

    Integer class labels are balanced: with C classes each gets k // C rows and k % C classes (random, seeded)
    one more; a class with too few rows gives its share to the others. Float / multi-hot labels: a plain
    random sample. k larger than the number of rows raises a ValueError.
    """
    n = len(rows_or_dataset)
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if k > n:
        raise ValueError(f"k={k} is larger than the {n} rows available; choose k <= {n}")
    is_rows = not hasattr(rows_or_dataset, "select")  # a datasets.Dataset has .select
    labels = [r["label"] for r in rows_or_dataset] if is_rows else _column(rows_or_dataset, "label")
    idx = _k_shot_indices(labels, int(k), np.random.default_rng(seed))
    return [rows_or_dataset[int(i)] for i in idx] if is_rows else rows_or_dataset.select(idx)


def no_train_error(task: Task, source_desc: str, paths: Optional[Dict[str, Path]] = None) -> ValueError:
    """The error for a task whose chosen source has no training split (QNLI, BoolQ offline).

    Any other task without its train file names the file looked for: its dev file is its test set.
    """
    if not may_train_on_dev(task):
        where = f" at {paths['train']}" if paths else f" in {source_desc}"
        return ValueError(
            f"task {task.name!r} has no training file{where}. Only the tasks whose offline copy ships just a dev "
            "file (qnli, boolq) may train on it, and only as sources; every other task's dev file is its test set. "
            "Put the official train file there, or point --data-dir (SCALEARN_DATA_DIR) at a folder that has it."
        )
    return ValueError(
        f"task {task.name!r} has no training split in {source_desc} (offline copies of QNLI and BoolQ ship "
        "only their dev file), so it cannot be a target here. To use it as a *source* task, call "
        "load_splits(..., dev_as_train=True): its dev file is then split 90/10 into train/validation and it "
        "has no test set. To use it as a target, load its training data from the hub (source='hub', online)."
    )


def first_k_shot(ds, k: int, seed: int = SPLIT_SEED):
    """The few-shot training rows of the authors' protocol: the first k rows of the train split shuffled with
    seed 42 (`ds.shuffle(seed=42).select(range(k))`), the same rows for every run seed."""
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if k > len(ds):
        raise ValueError(f"k={k} is larger than the {len(ds)} training rows available; choose k <= {len(ds)}")
    return ds.shuffle(seed=seed).select(range(int(k)))


def load_splits(task, data_dir=None, source: str = "auto", seed: int = SPLIT_SEED, k_shot: Optional[int] = None,
                max_train: Optional[int] = None, dev_as_train: bool = False):
    """DatasetDict {train, validation, test} of processed rows, following the paper's protocol.

    train/validation: the official train split 90/10 (seed 42; stratified, or by group for MultiRC/ReCoRD);
    test: the official dev split. HumSet: its official validation split when the folder has one.
    max_train: seeded (stratified) subsample of train after the split. k_shot: train becomes the first k rows
    of the seed-42 shuffled train split (first_k_shot: the same rows for every run seed); validation stays
    the held-out 10% split (the caller caps its size); max_train is then ignored.
    dev_as_train: for tasks without a train split (QNLI, BoolQ offline) split the dev file 90/10 instead and
    return an empty test split -- such a task can only be a source.
    """
    from datasets import DatasetDict

    task = get_task(task)
    raw = load_raw(task, data_dir, source)
    if task.needs_label_names_from_data:
        task = task.with_label_names(label_names_from_rows(task, raw["train"]))
        _warn_unknown_labels(task, raw)
    if "train" not in raw and (not dev_as_train or not may_train_on_dev(task)):
        kind, root = choose_source(task, data_dir, source)
        paths = local_paths(task, root) if kind == "local" and task.benchmark != "humset" else None
        raise no_train_error(task, describe_source(task, data_dir, source), paths)
    _check_classes(task, raw, data_dir, source)
    train, validation, test = _protocol_splits(task, raw, seed)
    if k_shot is not None:
        train = first_k_shot(train, k_shot)
    elif max_train is not None:
        train = subsample(task, train, max_train, seed)
    return DatasetDict(train=train, validation=validation, test=test)


def _check_classes(task: Task, raw: Dict[str, Rows], data_dir, source: str) -> None:
    """A classification task's training file (the dev file of a dev-only source) must hold at least 2 classes:
    with one, a model learns nothing and scores 100% on validation rows cut from the same file."""
    split = "train" if "train" in raw else "test"
    if task.problem != "classification" or not raw.get(split):
        return
    labels = sorted({str(r.get(task.label_field)) for r in raw[split]})
    if len(labels) < 2:
        kind, root = choose_source(task, data_dir, source)
        where = (local_paths(task, root)[split] if kind == "local" and task.benchmark != "humset"
                 else describe_source(task, data_dir, source))
        label = labels[0]
        if label.lstrip("-").isdigit() and 0 <= int(label) < len(task.label_names):  # hub schema: a class index
            label = task.label_names[int(label)]
        raise ValueError(f"{where}: all {len(raw[split])} training rows of {task.name!r} have the label {label!r}; "
                         "a classifier needs at least 2 classes to learn anything: use the task's full training file")


def _protocol_splits(task: Task, raw: Dict[str, Rows], seed: int):
    """(train, validation, test) datasets before any subsampling (see load_splits)."""
    test = to_dataset(task, process_rows(task, raw["test"]))
    if "train" not in raw:  # dev_as_train: a source-only task
        return (*split_train_validation(task, test, seed), test.select([]))
    full_train = to_dataset(task, process_rows(task, raw["train"]))
    if "validation" in raw:  # HumSet's official validation split
        return full_train, to_dataset(task, process_rows(task, raw["validation"])), test
    return (*split_train_validation(task, full_train, seed), test)


def _warn_unknown_labels(task: Task, raw: Dict[str, Rows]) -> None:
    """Warn about HumSet labels in validation/test that never occur in train (they are dropped)."""
    known = set(task.label_names)
    for split in ("validation", "test"):
        unknown = {lab for row in raw.get(split, []) for lab in row[task.label_field]} - known
        if unknown:
            warnings.warn(f"task {task.name!r}: {split} labels not in train are ignored: {sorted(unknown)}")


# ------------------------------------------------------------------ a preset's rows per split
def _limit(rows: list, n: Optional[int], seed: int = 0) -> list:
    if n is None or len(rows) <= n:
        return list(rows)
    keep = sorted(random.Random(seed).sample(range(len(rows)), n))
    return [rows[i] for i in keep]


def load_task_data(task: Task, preset: Preset, data_dir=None, k_shot: Optional[int] = None,
                   seed: int = 0, as_source: bool = False) -> Dict[str, list]:
    """Processed rows per split after the paper's protocol and the preset's budget.

    `as_source`: a source task of stage 1 (the zoo): preset.source_max_train rows; a task with only a dev file
    here (QNLI, BoolQ offline) is then split 90/10 from it and has no test. Otherwise the target: preset.max_train
    rows, which its own stage-1 adapter (the Adapter row) and every stage-2 method share; with `k_shot`, the
    first k rows of the seed-42 shuffled train split (the same for every seed) and validation rows from the
    held-out split (preset.few_shot_max_validation). `seed` does not change the rows (the protocol's splits are
    seeded with 42); it is kept for callers.
    """
    dev_only = as_source and not has_train(task, data_dir)
    max_train = preset.source_max_train if as_source else preset.max_train
    splits = load_splits(task.name, data_dir=data_dir, k_shot=None if as_source else k_shot, max_train=max_train,
                         dev_as_train=dev_only)
    max_val = preset.few_shot_max_validation if (k_shot and not as_source) else preset.max_validation
    return {"train": splits["train"].to_list(),
            "validation": _limit(splits["validation"].to_list(), max_val),
            "test": _limit(splits["test"].to_list(), preset.max_test)}
