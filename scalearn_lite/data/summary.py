"""Summaries of every task's data for the `tasks` CLI command.
"""
from __future__ import annotations

from typing import Any, Dict, List

from ..tasks import TASKS, get_task
from .locations import check_data_dir, describe_source, may_train_on_dev
from .readers import load_raw
from .splits import load_splits
from .templates import label_names_from_rows, process_rows


def summarize(task, data_dir=None, source: str = "auto") -> Dict[str, Any]:
    """Name, benchmark, metric, num_labels, data source and split sizes (0 where a split is unavailable).

    Sizes count processed rows (MultiRC answer options, ReCoRD candidate entities).
    """
    task = get_task(task)
    raw = load_raw(task, data_dir, source)
    if task.needs_label_names_from_data:
        task = task.with_label_names(label_names_from_rows(task, raw["train"]))
    splits = {"train": 0, "validation": 0, "test": 0}
    if "train" in raw:
        splits.update({k: len(v) for k, v in load_splits(task, data_dir, source).items()})
    else:
        splits["test"] = len(process_rows(task, raw["test"]))
    return {"name": task.name, "benchmark": task.benchmark, "problem": task.problem, "metric": task.main_metric,
            "metrics": list(task.metrics), "num_labels": task.num_labels, "label_names": list(task.label_names),
            "source": describe_source(task, data_dir, source), "splits": splits,
            "note": "" if "train" in raw else ("dev only: usable as a source task, not as a target"
                                               if may_train_on_dev(task) else "no train file: unusable here")}


def task_table(data_dir=None, source: str = "auto") -> List[Dict[str, Any]]:
    """summarize() for every registered task; unavailable data is recorded (source, error), never raised."""
    if source != "hub":
        check_data_dir(data_dir)  # a typo in --data-dir is an error, not a table of "unavailable"
    table = []
    for task in TASKS.values():
        try:
            table.append(summarize(task, data_dir, source))
        except (FileNotFoundError, ConnectionError, OSError, ValueError) as err:
            offline = isinstance(err, (FileNotFoundError, ConnectionError))
            table.append({"name": task.name, "benchmark": task.benchmark, "problem": task.problem,
                          "metric": task.main_metric, "metrics": list(task.metrics),
                          "num_labels": None if task.needs_label_names_from_data else task.num_labels,
                          "label_names": list(task.label_names),
                          "source": "unavailable offline" if offline else "unavailable",
                          "splits": {"train": 0, "validation": 0, "test": 0}, "note": "",
                          "error": str(err).split(". ")[0]})
    return table
