"""Task registry: name -> benchmark, data location, label names, input template, metrics.

A `Task` is small printable data; `data` reads it to load and process rows, `metrics.py` to score
predictions. Label names are the Hugging Face hub's `ClassLabel` names in hub order, so local files
and hub data give the same integer labels.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Dict, Iterable, List, Optional, Tuple

BENCHMARKS = ("glue", "superglue", "humset")
PROBLEMS = ("classification", "regression", "multiple_choice", "multi_label", "record")

_GLUE_FILES = {"train": "train.tsv", "test": "dev.tsv"}
_SUPERGLUE_FILES = {"train": "train.jsonl", "test": "val.jsonl"}
# HumSet ships official train / validation / test files; the extension (.jsonl, .json, .csv) is found at load time.
_HUMSET_FILES = {"train": "train", "validation": "validation", "test": "test"}
_HUB_SPLITS = {"train": "train", "test": "validation"}
_BINARY = ("False", "True")


@dataclass(frozen=True)
class Task:
    """One target or source task: where its data is, what its labels mean, how it is scored."""

    name: str  # registry key, e.g. "rte", "superglue_rte"
    benchmark: str  # "glue" | "superglue" | "humset"
    hub_path: Optional[str]  # Hugging Face dataset id ("nyu-mll/glue", "aps/super_glue"), None if not on the hub
    hub_config: Optional[str]  # hub config name, e.g. "rte", "wsc.fixed"
    local_dir: str  # folder relative to a data dir, e.g. "glue_data/RTE", "superglue/CB"
    local_files: Dict[str, str] = field(default_factory=dict, hash=False)  # official split -> file name
    problem: str = "classification"  # one of PROBLEMS
    label_names: Tuple[str, ...] = ()  # hub ClassLabel names in hub order; HumSet: () until read from data
    input_fields: Tuple[str, ...] = ()  # raw (hub-schema) fields the template uses
    template: str = ""  # human-readable description of the paper's input template
    metrics: Tuple[str, ...] = ("accuracy",)  # keys returned by metrics.compute_metrics
    main_metric: str = "accuracy"  # the paper's headline metric
    group_field: Optional[str] = None  # rows sharing this id stay in one split (MultiRC question, ReCoRD query)
    hub_splits: Dict[str, str] = field(default_factory=lambda: dict(_HUB_SPLITS), hash=False)  # ours -> hub's
    label_field: str = "label"  # raw field holding the label (HumSet: the task name, e.g. "sectors")
    offline_splits: Tuple[str, ...] = ("train", "test")  # splits in the project's offline copy (../shared/data)
    hub_revision: Optional[str] = None  # the hub dataset's commit it is loaded at (GLUE_REVISION / SUPERGLUE_REVISION)

    def __post_init__(self):
        if self.benchmark not in BENCHMARKS:
            raise ValueError(f"task {self.name!r}: benchmark must be one of {BENCHMARKS}, got {self.benchmark!r}")
        if self.problem not in PROBLEMS:
            raise ValueError(f"task {self.name!r}: problem must be one of {PROBLEMS}, got {self.problem!r}")
        if self.main_metric not in self.metrics:
            raise ValueError(f"task {self.name!r}: main_metric {self.main_metric!r} is not in {self.metrics}")

    @property
    def num_labels(self) -> int:
        """Output size of the head: 1 for regression, 2 choices for COPA, 2 for ReCoRD's binary rows."""
        if self.problem == "regression":
            return 1
        if not self.label_names:
            raise ValueError(
                f"task {self.name!r} reads its label names from the data; "
                "call scalearn_lite.data.resolve_labels(task, data_dir) first"
            )
        return len(self.label_names)

    @property
    def has_local_train(self) -> bool:
        """True if the project's offline copy of the data has this task's training split."""
        return "train" in self.offline_splits

    @property
    def needs_label_names_from_data(self) -> bool:
        """True for HumSet tasks, whose label sets are read from the training split (sorted)."""
        return self.problem == "multi_label" and not self.label_names

    def with_label_names(self, names: Iterable[str]) -> "Task":
        """A copy of this task with its label names filled in (used for HumSet)."""
        return replace(self, label_names=tuple(names))


# The hub datasets, pinned: commits of their parquet data (both repositories hold the parquet conversion of their
# former loading scripts on main). These hashes are the ones several public projects pin, and whose datasets cache
# folders they show (glue/<config>/0.0.0/<hash>); they were NOT checked against the hub from here (no network).
GLUE_REVISION = "bcdcba79d07bc864c1c254ccfcedcce55bcc9a8c"  # nyu-mll/glue
SUPERGLUE_REVISION = "3de24cf8022e94f4ee4b9d55a6f539891524d646"  # aps/super_glue


def _glue(name, config, folder, problem, labels, fields, template, metrics, main, **kw) -> Task:
    """A GLUE task in the classic `glue_data/<TASK>/{train,dev}.tsv` layout."""
    return Task(name=name, benchmark="glue", hub_path="nyu-mll/glue", hub_config=config, hub_revision=GLUE_REVISION,
                local_dir=f"glue_data/{folder}", local_files=kw.pop("local_files", dict(_GLUE_FILES)),
                problem=problem, label_names=labels, input_fields=fields, template=template,
                metrics=metrics, main_metric=main, **kw)


def _superglue(name, config, folder, problem, labels, fields, template, metrics, main, **kw) -> Task:
    """A SuperGLUE task in the official `<Task>/{train,val}.jsonl` layout."""
    return Task(name=name, benchmark="superglue", hub_path="aps/super_glue", hub_config=config,
                hub_revision=SUPERGLUE_REVISION,
                local_dir=f"superglue/{folder}", local_files=dict(_SUPERGLUE_FILES), problem=problem,
                label_names=labels, input_fields=fields, template=template, metrics=metrics,
                main_metric=main, **kw)


def _humset(name: str) -> Task:
    """A HumSet label set: multilingual excerpts, multi-label, macro-F1; data only from a user folder."""
    return Task(name=name, benchmark="humset", hub_path=None, hub_config=None, local_dir="humset",
                local_files=dict(_HUMSET_FILES), problem="multi_label", label_names=(),
                input_fields=("excerpt", name), template="excerpt (single text); multi-hot labels",
                metrics=("macro_f1",), main_metric="macro_f1", label_field=name, offline_splits=())


_ACC = ("accuracy",)
_PAIR = "sentence1 [SEP] sentence2"

_TASK_LIST: List[Task] = [
    # --- GLUE -------------------------------------------------------------------------------------
    _glue("cola", "cola", "CoLA", "classification", ("unacceptable", "acceptable"), ("sentence",),
          "sentence", ("matthews_corr", "accuracy"), "matthews_corr"),
    _glue("sst2", "sst2", "SST-2", "classification", ("negative", "positive"), ("sentence",),
          "sentence", ("accuracy",), "accuracy"),
    _glue("mrpc", "mrpc", "MRPC", "classification", ("not_equivalent", "equivalent"),
          ("sentence1", "sentence2"), _PAIR, ("accuracy", "f1"), "accuracy"),
    _glue("qqp", "qqp", "QQP", "classification", ("not_duplicate", "duplicate"), ("question1", "question2"),
          "question1 [SEP] question2", ("accuracy", "f1"), "accuracy", offline_splits=()),
    _glue("stsb", "stsb", "STS-B", "regression", (), ("sentence1", "sentence2"), _PAIR + " -> score 0-5",
          ("pearson", "spearman"), "pearson"),
    _glue("mnli", "mnli", "MNLI", "classification", ("entailment", "neutral", "contradiction"),
          ("premise", "hypothesis"), "premise [SEP] hypothesis (test = validation_matched)", _ACC, "accuracy",
          local_files={"train": "train.tsv", "test": "dev_matched.tsv"},
          hub_splits={"train": "train", "test": "validation_matched"}, offline_splits=()),
    _glue("qnli", "qnli", "QNLI", "classification", ("entailment", "not_entailment"), ("question", "sentence"),
          "question [SEP] sentence", _ACC, "accuracy", offline_splits=("test",)),
    _glue("rte", "rte", "RTE", "classification", ("entailment", "not_entailment"), ("sentence1", "sentence2"),
          _PAIR, _ACC, "accuracy"),
    # --- SuperGLUE --------------------------------------------------------------------------------
    _superglue("boolq", "boolq", "BoolQ", "classification", _BINARY, ("question", "passage"),
               "question [SEP] passage", _ACC, "accuracy", offline_splits=("test",)),
    _superglue("cb", "cb", "CB", "classification", ("entailment", "contradiction", "neutral"),
               ("premise", "hypothesis"), "premise [SEP] hypothesis", ("accuracy", "macro_f1"), "accuracy"),
    _superglue("copa", "copa", "COPA", "multiple_choice", ("choice1", "choice2"),
               ("premise", "choice1", "choice2", "question"),
               'premise + " because" (cause) / " so" (effect) [SEP] choice_i, one input per choice', _ACC,
               "accuracy"),
    _superglue("multirc", "multirc", "MultiRC", "classification", _BINARY, ("paragraph", "question", "answer"),
               'paragraph [SEP] question + " " + answer, one row per answer option', ("f1a", "em"), "f1a",
               group_field="question"),
    _superglue("record", "record", "ReCoRD", "record", _BINARY, ("passage", "query", "entities", "answers"),
               'passage [SEP] query with "@placeholder" -> entity, one binary row per candidate entity',
               ("f1", "em"), "f1", group_field="query", offline_splits=()),
    _superglue("superglue_rte", "rte", "RTE", "classification", ("entailment", "not_entailment"),
               ("premise", "hypothesis"), "premise [SEP] hypothesis", _ACC, "accuracy"),
    _superglue("wic", "wic", "WiC", "classification", _BINARY, ("word", "sentence1", "sentence2"),
               '"word: sentence1" [SEP] "word: sentence2"', _ACC, "accuracy"),
    _superglue("wsc", "wsc.fixed", "WSC", "classification", _BINARY,
               ("text", "span1_index", "span2_index", "span1_text", "span2_text"),
               "text with the pronoun (span2) marked *pronoun* [SEP] span1_text (the noun)", _ACC, "accuracy"),
    # --- HumSet -----------------------------------------------------------------------------------
    *[_humset(n) for n in ("sectors", "pillars_1d", "subpillars_1d", "pillars_2d", "subpillars_2d")],
]

TASKS: Dict[str, Task] = {t.name: t for t in _TASK_LIST}

ALIASES: Dict[str, str] = {
    "glue/rte": "rte", "superglue/rte": "superglue_rte", "super_glue/rte": "superglue_rte",
    "sst-2": "sst2", "sst_2": "sst2", "sts-b": "stsb", "sts_b": "stsb", "wsc.fixed": "wsc",
    "mnli_matched": "mnli", "mnli-m": "mnli",
}


_PREFIXES = ("glue", "superglue", "super_glue", "humset")  # "<benchmark>/<task>"; any other "a/b" is a path or hub id


def get_task(name) -> Task:
    """The registered task for a name (case-insensitive; aliases like "glue/rte", "sst-2", "wsc.fixed").

    A `Task` passes through unchanged. Unknown names raise a ValueError listing the valid ones.
    """
    if isinstance(name, Task):
        return name
    key = str(name).strip().lower()
    if key not in ALIASES and key.split("/", 1)[0] in _PREFIXES:  # "glue/cola", "superglue/wsc.fixed", "humset/sectors"
        prefix, key = key.split("/", 1)
        if prefix in ("superglue", "super_glue") and key == "rte":
            key = "superglue_rte"
    key = ALIASES.get(key, key)
    if key not in TASKS:
        raise ValueError(f"unknown task {name!r}; valid names: {', '.join(TASKS)} "
                         f"(aliases: {', '.join(ALIASES)})")
    return TASKS[key]


def list_tasks(benchmark: Optional[str] = None) -> List[str]:
    """Registered task names in registry order, optionally only one benchmark's."""
    if benchmark is not None and benchmark not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {benchmark!r}; choose one of {BENCHMARKS}")
    return [t.name for t in TASKS.values() if benchmark is None or t.benchmark == benchmark]
