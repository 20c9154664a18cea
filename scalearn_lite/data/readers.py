"""Local readers: the classic GLUE download, the official SuperGLUE zip and a user's HumSet folder, each row checked
(file and line for bad data) and returned in the HUB schema; the hub loader at a pinned revision; load_raw over both.
"""
from __future__ import annotations

import ast
import csv
import functools
import json
import math
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from ..tasks import TASKS, Task, get_task
from .locations import HOW_TO_GET_DATA, HUMSET_HELP, Rows, cache_dir, choose_source, hub_reachable, local_paths, resolve_data_dir


def _read_tsv(path: Path) -> List[Tuple[int, List[str]]]:
    """A GLUE TSV as (line number, fields): split on tabs, no quote handling, BOM stripped, blank lines dropped."""
    text = path.read_text(encoding="utf-8-sig")
    return [(n, line.rstrip("\r").split("\t")) for n, line in enumerate(text.split("\n"), 1) if line.strip("\r")]


def expected_labels(task: Task) -> str:
    """The label values a task accepts, for error messages: "entailment / not_entailment (or 0..1)"."""
    if task.problem == "regression":
        return "a number"
    return f"{' / '.join(task.label_names)} (or their ids 0..{len(task.label_names) - 1})"


def _label_id(task: Task, value: Any) -> Union[int, float]:
    """A raw label -> the hub's value: float for regression, else the ClassLabel index (or int(value)).

    A value that is none of the task's labels raises a ValueError saying which values are expected.
    """
    if task.problem == "regression":
        try:
            out = float(value)
        except (TypeError, ValueError):
            out = float("nan")
        if not math.isfinite(out):
            raise ValueError(f"label {value!r} is not a number")
        return out
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str) and value in task.label_names:
        return task.label_names.index(value)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return int(value.lower() == "true")
    try:
        out = int(value)
    except (TypeError, ValueError):
        out = None
    if out is None or not 0 <= out < len(task.label_names):
        raise ValueError(f"label {value!r} is not one of {expected_labels(task)}")
    return out


def _lines(numbers: Sequence[int], limit: int = 10) -> str:
    """"3, 7, 9" (at most `limit` numbers, then "… (N in all)")."""
    shown = ", ".join(str(n) for n in numbers[:limit])
    return shown + (f", … ({len(numbers)} in all)" if len(numbers) > limit else "")


# hub field -> TSV column (header name, or position for header-less CoLA); label column last.
_GLUE_COLUMNS = {
    "cola": ({"sentence": 3}, 1),
    "sst2": ({"sentence": "sentence"}, "label"),
    "mrpc": ({"sentence1": "#1 String", "sentence2": "#2 String"}, "Quality"),
    "qqp": ({"question1": "question1", "question2": "question2"}, "is_duplicate"),
    "stsb": ({"sentence1": "sentence1", "sentence2": "sentence2"}, "score"),
    "mnli": ({"premise": "sentence1", "hypothesis": "sentence2"}, "gold_label"),
    "qnli": ({"question": "question", "sentence": "sentence"}, "label"),
    "rte": ({"sentence1": "sentence1", "sentence2": "sentence2"}, "label"),
}


def _glue_rows(task: Task, path: Path) -> Rows:
    """Hub-schema rows from a classic GLUE TSV; idx is the row number, as the hub's builder sets it."""
    fields, label_col = _GLUE_COLUMNS[task.name]
    lines = _read_tsv(path)
    header = None if task.name == "cola" or not lines else lines.pop(0)[1]
    _check_header(task, path, header, [*fields.values(), label_col])
    col = (lambda c: c) if header is None else {name: i for i, name in enumerate(header)}.__getitem__
    width = 4 if header is None else len(header)
    rows, malformed = [], []
    for number, parts in lines:
        if len(parts) != width:
            malformed.append(number)
            continue
        row = {hub: parts[col(c)] for hub, c in fields.items()}
        try:
            row["label"] = _label_id(task, parts[col(label_col)])
        except ValueError as err:
            raise ValueError(f"{path}, line {number}: {err} (task {task.name})") from None
        row["idx"] = len(rows)
        rows.append(row)
    if malformed:
        raise ValueError(f"{path}: line(s) {_lines(malformed)} do not have the {width} tab-separated fields of "
                         f"the {'header' if header else 'format'} (task {task.name}); fix or delete those lines")
    return rows


def _check_header(task: Task, path: Path, header: Optional[List[str]], needed: list) -> None:
    """A TSV header must name every column the task reads."""
    missing = [c for c in needed if isinstance(c, str) and (header is None or c not in header)]
    if missing:
        raise ValueError(f"{path}, line 1: the header {header} lacks the column(s) {missing} that task "
                         f"{task.name} reads; is this the right file?")


def _read_jsonl_numbered(path: Path) -> List[Tuple[int, Dict[str, Any]]]:
    """(line number, object) for each non-blank line; a line that is not JSON raises naming file and line."""
    out = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                out.append((number, json.loads(line)))
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}, line {number}: not valid JSON ({err})") from None
    return out


def _read_jsonl(path: Path) -> Rows:
    """One JSON object per non-blank line."""
    return [obj for _, obj in _read_jsonl_numbered(path)]


_SUPERGLUE_FIELDS = {
    "boolq": ("question", "passage"),
    "cb": ("premise", "hypothesis"),
    "rte": ("premise", "hypothesis"),
    "copa": ("premise", "choice1", "choice2", "question"),
    "wic": ("word", "sentence1", "sentence2", "start1", "start2", "end1", "end2"),
    "wsc.fixed": ("text", "span1_index", "span2_index", "span1_text", "span2_text"),
}


def _fix_wsc_spans(row: Dict[str, Any]) -> Dict[str, Any]:
    """The hub's "wsc.fixed" repair: make span texts substrings of the text (case, trailing ".", newlines).

    Mirrors `aps/super_glue`'s builder, including its quirk for "theyscold" (span2_index -> 10, text unchanged).
    """
    for key in ("span1", "span2"):
        span, index = row[f"{key}_text"], row[f"{key}_index"]
        if span in row["text"] or span in ("Kamenev and Zinoviev", "Kamenev, Zinoviev, and Stalin"):
            continue
        if "theyscold" in span:
            row["span2_index"] = 10
        first = row["text"].split()[index]
        span = (span[0].lower() if first[0].islower() else span[0].upper()) + span[1:]
        row[f"{key}_text"] = span.rstrip(".").replace("\n", " ")
    return row


def _superglue_rows(task: Task, path: Path) -> Rows:
    """Hub-schema rows from an official SuperGLUE jsonl file (MultiRC flattened, ReCoRD one row per query)."""
    numbered = _read_jsonl_numbered(path)
    raw = [record for _, record in numbered]
    if task.name == "multirc":
        return _multirc_rows(raw)
    if task.name == "record":
        return [row for record in raw for row in _record_rows(record)]
    rows = []
    needed = _SUPERGLUE_FIELDS[task.hub_config]
    for number, record in numbered:
        record = {**record, **record.get("target", {})}
        missing = [name for name in (*needed, "idx") if name not in record]
        if missing:
            raise ValueError(f"{path}, line {number}: missing field(s) {missing} (task {task.name} reads "
                             f"{list(needed)} and idx)")
        row = {name: record[name] for name in needed}
        if task.hub_config == "wsc.fixed":
            row = _fix_wsc_spans(row)
        row["idx"] = record["idx"]
        try:
            row["label"] = _label_id(task, record["label"]) if "label" in record else -1
        except ValueError as err:
            raise ValueError(f"{path}, line {number}: {err} (task {task.name})") from None
        rows.append(row)
    return rows


def _multirc_rows(raw: Rows) -> Rows:
    """MultiRC paragraph -> questions -> answers, flattened in document order to one row per answer."""
    rows = []
    for record in raw:
        passage = record["passage"]
        for question in passage["questions"]:
            for answer in question["answers"]:
                label = answer.get("label")
                rows.append({
                    "paragraph": passage["text"], "question": question["question"], "answer": answer["text"],
                    "idx": {"paragraph": record["idx"], "question": question["idx"], "answer": answer["idx"]},
                    "label": -1 if label is None else int(bool(label)),
                })
    return rows


def _record_rows(record: Dict[str, Any]) -> Rows:
    """ReCoRD passage -> one hub-schema row per query (entities unique, in passage order; answers sorted)."""
    text = record["passage"]["text"]
    spans = sorted(({"text": text[e["start"]:e["end"] + 1], "start": e["start"], "end": e["end"] + 1}
                    for e in record["passage"]["entities"]), key=lambda e: e["start"])
    entities = list(dict.fromkeys(s["text"] for s in spans))
    span_columns = {k: [s[k] for s in spans] for k in ("text", "start", "end")}
    return [{"passage": text, "query": qa["query"], "entities": entities, "entity_spans": span_columns,
             "answers": sorted({a["text"] for a in qa.get("answers", [])}),
             "idx": {"passage": record["idx"], "query": qa["idx"]}} for qa in record["qas"]]


_HUMSET_LABEL_COLUMNS = ("sectors", "pillars_1d", "pillars_2d", "subpillars_1d", "subpillars_2d")


def _parse_label_list(value: Any, path: Path) -> List[str]:
    """A HumSet label cell -> list of strings (JSON/Python list literal in CSV files, a list in JSON)."""
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    text = "" if value is None else str(value).strip()
    if not text:
        return []
    try:
        parsed = ast.literal_eval(text) if text.startswith("[") else [text]
    except (ValueError, SyntaxError):
        raise ValueError(f"{path}: cannot parse label cell {text[:80]!r}; expected a list such as "
                         "['Health', 'Protection']") from None
    return [str(v) for v in parsed]


def _humset_records(path: Path) -> List[Tuple[str, Dict[str, Any]]]:
    """(where, row) of a HumSet file: "line N" for .csv/.jsonl, "entry N" for a .json list."""
    if path.suffix == ".csv":
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            out = []
            for row in reader:
                if None in row or None in row.values():
                    raise ValueError(f"{path}, line {reader.line_num}: {len(reader.fieldnames)} columns in the "
                                     f"header but another number of fields in this row. {HUMSET_HELP}")
                out.append((f"line {reader.line_num}", dict(row)))
            return out
    if path.suffix == ".json":
        return [(f"entry {i}", row) for i, row in enumerate(json.loads(path.read_text(encoding="utf-8")))]
    return [(f"line {n}", row) for n, row in _read_jsonl_numbered(path)]


def _humset_rows(task: Task, path: Path) -> Rows:
    """HumSet rows with their published columns; label columns become lists of strings."""
    records = _humset_records(path)
    for where, row in records:
        missing = {"excerpt", task.label_field} - set(row)
        if missing:
            raise ValueError(f"{path}, {where}: missing HumSet column(s) {sorted(missing)}. {HUMSET_HELP}")
    rows = [row for _, row in records]
    for row in rows:
        for col in _HUMSET_LABEL_COLUMNS:
            if col in row:
                row[col] = _parse_label_list(row[col], path)
    return rows


@functools.lru_cache(maxsize=32)
def _read_local_cached(task_name: str, path: str, mtime: float) -> Tuple[Dict[str, Any], ...]:
    """Parsed rows of one local file, cached on (task, path, modification time)."""
    task, p = TASKS[task_name], Path(path)
    reader = {"glue": _glue_rows, "superglue": _superglue_rows, "humset": _humset_rows}[task.benchmark]
    return tuple(reader(task, p))


def _read_local(task: Task, path: Path) -> Rows:
    """Rows of one local file (fresh shallow copies of the cached rows)."""
    return [dict(r) for r in _read_local_cached(task.name, str(path), path.stat().st_mtime)]


def load_local(task, data_dir=None) -> Dict[str, Rows]:
    """Official splits of a task from local files; a missing train file leaves only "test"."""
    task = get_task(task)
    paths = local_paths(task, data_dir)
    found = {s: p for s, p in paths.items() if p.is_file()}
    if task.benchmark == "humset":
        return _humset_splits(task, found, paths)
    if "test" not in found:
        looked = " and ".join(str(p) for p in paths.values())
        raise FileNotFoundError(f"task {task.name!r}: no local file at {paths['test']} (looked for {looked}). "
                                f"{HOW_TO_GET_DATA}")
    return {s: _read_local(task, found[s]) for s in ("train", "test") if s in found}


def _humset_splits(task: Task, found: Dict[str, Path], paths: Dict[str, Path]) -> Dict[str, Rows]:
    """HumSet's official splits: train plus test (validation used as test if there is no test file)."""
    if "train" not in found or not ({"test", "validation"} & set(found)):
        folder = paths["train"].parent
        raise FileNotFoundError(f"task {task.name!r}: HumSet files not found in {folder} (need train and "
                                f"test or validation .jsonl/.json/.csv). {HUMSET_HELP}")
    out = {s: _read_local(task, p) for s, p in found.items()}
    if "test" not in out:
        out["test"] = out.pop("validation")
    return out


def load_hub(task) -> Dict[str, Rows]:
    """Official splits from the Hugging Face hub (cached under cache_dir()/"hf"), as lists of dicts."""
    task = get_task(task)
    if task.hub_path is None:
        raise FileNotFoundError(f"task {task.name!r} is not on the Hugging Face hub. {HUMSET_HELP}")
    where = f"{task.hub_path} (config {task.hub_config!r})"
    if not hub_reachable():
        raise ConnectionError(f"cannot load {where}: huggingface.co is unreachable (offline?). "
                              f"{HOW_TO_GET_DATA} With a cached copy, set HF_DATASETS_OFFLINE=1.")
    import datasets

    try:
        dd = datasets.load_dataset(task.hub_path, task.hub_config, revision=task.hub_revision,
                                   cache_dir=str(cache_dir() / "hf"))
    except Exception as err:  # network, auth and cache errors all mean "no hub data here"
        raise ConnectionError(f"cannot load {where} from the hub: {err}. {HOW_TO_GET_DATA}") from err
    return {ours: dd[theirs].to_list() for ours, theirs in task.hub_splits.items() if theirs in dd}


def load_raw(task, data_dir=None, source: str = "auto") -> Dict[str, Rows]:
    """Official splits {"train", "test"} (test = official dev; MNLI validation_matched) as hub-schema rows.

    source: "local" (files under data_dir / SCALEARN_DATA_DIR), "hub", or "auto" (local if the task's files
    are there, else hub). Offline QNLI / BoolQ have no train file: only "test" is returned.
    HumSet may also return its official "validation" split.
    """
    task = get_task(task)
    kind, root = choose_source(task, data_dir, source)
    if kind == "local":
        return load_local(task, root)
    given = resolve_data_dir(data_dir)
    try:
        return load_hub(task)
    except ConnectionError as err:
        if source == "auto" and given is not None:  # the user pointed at a folder: say where we looked first
            looked = ", ".join(str(p) for p in local_paths(task, given).values())
            raise FileNotFoundError(f"no local data for task {task.name!r}: looked for {looked} (not found), "
                                    f"and the hub fallback failed: {err}") from None
        raise
