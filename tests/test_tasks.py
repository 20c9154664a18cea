"""The task registry (scalearn_lite/tasks.py): names, aliases, benchmarks, fields, metrics, label names; a Task
validates itself. No data files needed."""
import pytest

from scalearn_lite.tasks import TASKS, Task, get_task, list_tasks


def test_registry_names_and_benchmarks():
    assert list_tasks("glue") == ["cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte"]
    assert list_tasks("superglue") == ["boolq", "cb", "copa", "multirc", "record", "superglue_rte", "wic", "wsc"]
    assert list_tasks("humset") == ["sectors", "pillars_1d", "subpillars_1d", "pillars_2d", "subpillars_2d"]
    assert len(list_tasks()) == len(TASKS) == 21
    with pytest.raises(ValueError, match="glue"):
        list_tasks("nope")


@pytest.mark.parametrize("alias, name", [
    ("RTE", "rte"), ("glue/rte", "rte"), ("superglue/rte", "superglue_rte"), ("SST-2", "sst2"),
    ("sts-b", "stsb"), ("sts_b", "stsb"), ("wsc.fixed", "wsc"), ("superglue/wsc.fixed", "wsc"),
    ("glue/cola", "cola"), ("humset/sectors", "sectors"), (" CB ", "cb"),
])
def test_get_task_aliases(alias, name):
    assert get_task(alias).name == name
    assert get_task(get_task(alias)) is TASKS[name]


def test_unknown_task_lists_valid_names():
    with pytest.raises(ValueError) as err:
        get_task("glue/wnli")
    for name in TASKS:
        assert name in str(err.value)


def test_task_fields_metrics_and_num_labels():
    assert get_task("stsb").num_labels == 1 and get_task("stsb").problem == "regression"
    assert get_task("copa").num_labels == 2 and get_task("copa").problem == "multiple_choice"
    assert get_task("record").num_labels == 2 and get_task("record").group_field == "query"
    assert get_task("mnli").num_labels == 3 and get_task("mnli").hub_splits["test"] == "validation_matched"
    assert get_task("wsc").hub_config == "wsc.fixed" and get_task("superglue_rte").hub_config == "rte"
    assert get_task("multirc").group_field == "question"
    mains = {"cola": "matthews_corr", "stsb": "pearson", "mrpc": "accuracy", "qqp": "accuracy",
             "multirc": "f1a", "record": "f1", "sectors": "macro_f1", "cb": "accuracy", "wsc": "accuracy"}
    for name, metric in mains.items():
        assert get_task(name).main_metric == metric
    assert "spearman" in get_task("stsb").metrics and "f1" in get_task("mrpc").metrics
    assert "em" in get_task("multirc").metrics and "em" in get_task("record").metrics
    assert not get_task("qnli").has_local_train and not get_task("boolq").has_local_train
    assert get_task("rte").has_local_train
    with pytest.raises(ValueError, match="resolve_labels"):
        get_task("sectors").num_labels
    assert get_task("sectors").with_label_names(["a", "b"]).num_labels == 2
    assert hash(get_task("rte")) == hash(get_task("glue/rte"))


def test_label_names_are_hub_classlabels():
    assert get_task("rte").label_names == ("entailment", "not_entailment")
    assert get_task("qnli").label_names == ("entailment", "not_entailment")
    assert get_task("cb").label_names == ("entailment", "contradiction", "neutral")
    assert get_task("mnli").label_names == ("entailment", "neutral", "contradiction")
    assert get_task("cola").label_names == ("unacceptable", "acceptable")
    assert get_task("sst2").label_names == ("negative", "positive")
    assert get_task("mrpc").label_names == ("not_equivalent", "equivalent")
    assert get_task("copa").label_names == ("choice1", "choice2")
    for name in ("boolq", "wic", "wsc", "multirc"):
        assert get_task(name).label_names == ("False", "True")


def test_task_validates_itself():
    with pytest.raises(ValueError, match="benchmark"):
        Task(name="x", benchmark="nope", hub_path=None, hub_config=None, local_dir="x")
    with pytest.raises(ValueError, match="main_metric"):
        Task(name="x", benchmark="glue", hub_path=None, hub_config=None, local_dir="x", main_metric="f1")
