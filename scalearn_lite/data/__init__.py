"""Data: one API over three sources (local files, Hugging Face hub, a user's HumSet folder).

    load_raw(task)     official splits {"train", "test"} as lists of rows in the HUB schema
                       (same field names and integer labels as `nyu-mll/glue` / `aps/super_glue`)
    process_rows(...)  hub-schema rows -> model inputs {text_a, text_b, label, group, (+extras)}
    load_splits(task)  DatasetDict {train, validation, test}: official train split 90/10 (seed 42,
                       stratified / grouped), official dev as test; optional max_train and k-shot

Local layouts: the classic GLUE download (`glue_data/<TASK>/{train,dev}.tsv`) and the official SuperGLUE
zip (`superglue/<Task>/{train,val}.jsonl`) under one data dir (argument, or env SCALEARN_DATA_DIR).
Tokenisation lives elsewhere. The package: locations.py (where data lives, its identity), readers.py (local files
and the hub, each row checked), templates.py (hub rows -> model inputs), splits.py (the paper's 90/10 split, test,
k-shot, a preset's rows per split), summary.py (the `tasks` table). Every public name is importable from
`scalearn_lite.data`.
"""
from __future__ import annotations

from .locations import (
    ENV_DATA_DIR, ENV_CACHE_DIR, SOURCES, Rows, HOW_TO_GET_DATA, HUMSET_HELP, resolve_data_dir, cache_dir,
    humset_dir, local_paths, hub_reachable, check_data_dir, choose_source, has_train, may_train_on_dev,
    describe_source, file_sha256, data_identity,
)
from .readers import (
    expected_labels, load_local, load_hub, load_raw,
)
from .templates import (
    label_names_from_rows, resolve_labels, process_rows, to_dataset,
)
from .splits import (
    VALIDATION_FRACTION, SPLIT_SEED, check_source_data, split_train_validation, subsample, sample_k_shot,
    no_train_error, first_k_shot, load_splits, load_task_data,
)
from .summary import (
    summarize, task_table,
)

__all__ = [
    "ENV_DATA_DIR", "ENV_CACHE_DIR", "SOURCES", "Rows", "HOW_TO_GET_DATA", "HUMSET_HELP", "resolve_data_dir",
    "cache_dir", "humset_dir", "local_paths", "hub_reachable", "check_data_dir", "choose_source", "has_train",
    "may_train_on_dev", "describe_source", "file_sha256", "data_identity", "expected_labels", "load_local",
    "load_hub", "load_raw", "label_names_from_rows", "resolve_labels", "process_rows", "to_dataset",
    "VALIDATION_FRACTION", "SPLIT_SEED", "check_source_data", "split_train_validation", "subsample", "sample_k_shot",
    "no_train_error", "first_k_shot", "load_splits", "load_task_data", "summarize", "task_table",
]
