"""Data: one API over three sources (local files, Hugging Face hub, a user's HumSet folder).

    load_raw(task)     official splits {"train", "test"} as lists of rows in the HUB schema
                       (same field names and integer labels as `nyu-mll/glue` / `aps/super_glue`)
    process_rows(...)  hub-schema rows -> model inputs {text_a, text_b, label, group, (+extras)}
    load_splits(task)  DatasetDict {train, validation, test}: official train split 90/10 (seed 42,
                       stratified / grouped), official dev as test; optional max_train and k-shot

Local layouts: the classic GLUE download (`glue_data/<TASK>/{train,dev}.tsv`) and the official SuperGLUE
zip (`superglue/<Task>/{train,val}.jsonl`) under one data dir (argument, or env SCALEARN_DATA_DIR).
Tokenisation lives elsewhere.
"""
from __future__ import annotations

import ast
import csv
import functools
import hashlib
import json
import math
import os
import socket
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .tasks import TASKS, Task, get_task

ENV_DATA_DIR = "SCALEARN_DATA_DIR"
ENV_CACHE_DIR = "SCALEARN_CACHE_DIR"
SOURCES = ("auto", "local", "hub")
VALIDATION_FRACTION = 0.1  # paper: 10% of the official train split for early stopping / model selection
SPLIT_SEED = 42  # paper: the 90/10 split uses seed 42
Rows = List[Dict[str, Any]]

_HOW_TO_GET_DATA = (
    "Set SCALEARN_DATA_DIR (or pass data_dir= / --data-dir) to a folder that holds glue_data/ and superglue/ "
    "in the classic GLUE / official SuperGLUE layouts (e.g. ../shared/data from the repository root), "
    "or use source='hub' with internet access."
)
_HUMSET_HELP = (
    "HumSet is access-gated by its owners and is never bundled: request it from them, then pass "
    "data_dir= (or SCALEARN_DATA_DIR) pointing at a folder holding train / validation / test files "
    "(.jsonl, .json or .csv) with the columns entry_id, lead_id, project_id, lang, excerpt, sectors, "
    "pillars_1d, pillars_2d, subpillars_1d, subpillars_2d (label columns: lists of strings), "
    "either directly or in a humset/ subfolder."
)


# ----------------------------------------------------------------------------------------------------
# Locations
# ----------------------------------------------------------------------------------------------------
def resolve_data_dir(data_dir: Union[str, Path, None] = None) -> Optional[Path]:
    """The local data folder: the argument, else env SCALEARN_DATA_DIR, else None (use the hub)."""
    value = data_dir if data_dir not in (None, "") else os.environ.get(ENV_DATA_DIR) or None
    return Path(value).expanduser() if value is not None else None


def cache_dir(package_dir: Union[str, Path, None] = None) -> Path:
    """Where downloads and trained artefacts go: env SCALEARN_CACHE_DIR; else, in a source checkout (the package
    beside pyproject.toml: `pip install -e .`, `make`), <repo root>/data_cache; else (a wheel installed into
    site-packages) the user's cache, $XDG_CACHE_HOME/scalearn_lite or ~/.cache/scalearn_lite."""
    value = os.environ.get(ENV_CACHE_DIR)
    if value:
        return Path(value).expanduser()
    root = Path(package_dir or Path(__file__).resolve().parent).parent
    if (root / "pyproject.toml").is_file():
        return root / "data_cache"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "scalearn_lite"


def _humset_dir(root: Path) -> Path:
    """A HumSet folder: <root>/humset (or HumSet) if it exists, else <root> itself."""
    for name in ("humset", "HumSet"):
        if (root / name).is_dir():
            return root / name
    return root


def _find_humset_file(folder: Path, split: str) -> Optional[Path]:
    """The HumSet file for a split (train / validation / test; dev and val accepted), or None."""
    stems = {"train": ("train",), "validation": ("validation", "val", "dev"), "test": ("test",)}[split]
    for stem in stems:
        for ext in (".jsonl", ".json", ".csv"):
            if (folder / f"{stem}{ext}").is_file():
                return folder / f"{stem}{ext}"
    return None


def local_paths(task, data_dir: Union[str, Path, None] = None) -> Dict[str, Path]:
    """Exact file paths a task's official splits are read from (they may not exist)."""
    task, root = get_task(task), resolve_data_dir(data_dir)
    if root is None:
        help_text = _HUMSET_HELP if task.benchmark == "humset" else _HOW_TO_GET_DATA
        raise FileNotFoundError(f"no data dir given for task {task.name!r}. {help_text}")
    if task.benchmark == "humset":
        folder = _humset_dir(root)
        return {s: _find_humset_file(folder, s) or folder / f"{s}.jsonl" for s in task.local_files}
    return {split: root / task.local_dir / name for split, name in task.local_files.items()}


def _has_local_files(task: Task, root: Optional[Path]) -> bool:
    """True if at least the task's evaluation split exists under root."""
    if root is None:
        return False
    paths = local_paths(task, root)
    return any(paths[s].is_file() for s in ("test", "validation") if s in paths)


@functools.lru_cache(maxsize=1)
def hub_reachable() -> bool:
    """True if huggingface.co answers (or HF offline mode / a proxy is configured); cached per process."""
    flags = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HTTPS_PROXY", "https_proxy")
    if any(os.environ.get(f) not in (None, "", "0") for f in flags):
        return True
    try:
        socket.create_connection(("huggingface.co", 443), timeout=3).close()
        return True
    except OSError:
        return False


def check_data_dir(data_dir=None) -> Optional[Path]:
    """The data dir (see resolve_data_dir); a FileNotFoundError naming it if one is given but is no folder."""
    root = resolve_data_dir(data_dir)
    if root is not None and not root.is_dir():
        given = "--data-dir / data_dir=" if data_dir not in (None, "") else f"${ENV_DATA_DIR}"
        raise FileNotFoundError(f"data dir {root} (from {given}) does not exist or is not a folder. {_HOW_TO_GET_DATA}")
    return root


def _choose_source(task: Task, data_dir, source: str) -> Tuple[str, Optional[Path]]:
    """("local", root) or ("hub", None) for a task, per the `source` rule."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    root = resolve_data_dir(data_dir) if source == "hub" else check_data_dir(data_dir)
    if source == "local" or task.hub_path is None:
        return "local", root
    if source == "hub":
        return "hub", None
    return ("local", root) if _has_local_files(task, root) else ("hub", None)


def has_train(task, data_dir=None, source: str = "auto") -> bool:
    """True if the chosen source has the task's official training split (offline QNLI/BoolQ do not)."""
    task = get_task(task)
    kind, root = _choose_source(task, data_dir, source)
    return kind == "hub" or (root is not None and "train" in task.local_files
                             and local_paths(task, root)["train"].is_file())


def may_train_on_dev(task) -> bool:
    """True for the tasks declared dev-only offline (QNLI, BoolQ): as *sources* they may train on a 90/10 split
    of their dev file. Every other task's dev file is its test set and is never trained on."""
    task = get_task(task)
    return "test" in task.offline_splits and "train" not in task.offline_splits


def check_source_data(task, data_dir=None, source: str = "auto") -> None:
    """Raise the load error now (no reading) if a stage-1 adapter of `task` could not get its local training data."""
    task = get_task(task)
    kind, root = _choose_source(task, data_dir, source)
    if kind != "local" or task.benchmark == "humset":
        return  # the hub has every split; HumSet's files are checked when read
    paths = local_paths(task, root)
    if not paths["test"].is_file():
        load_local(task, root)  # raises its FileNotFoundError naming the paths
    if not paths["train"].is_file() and not may_train_on_dev(task):
        raise _no_train_error(task, describe_source(task, data_dir, source), paths)


def describe_source(task, data_dir=None, source: str = "auto") -> str:
    """Where a task's data would come from: a local folder path or a hub id ("aps/super_glue:cb")."""
    task = get_task(task)
    kind, root = _choose_source(task, data_dir, source)
    if kind == "hub":
        return f"{task.hub_path}:{task.hub_config}"
    if root is None:
        return "no data dir"
    return str(_humset_dir(root) if task.benchmark == "humset" else root / task.local_dir)


@functools.lru_cache(maxsize=64)
def file_sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def data_identity(task, data_dir=None, source: str = "auto") -> Dict[str, Any]:
    """What a task's rows are read from, for cache keys: each local file's name, size and sha256 (the folder it
    sits in does not matter, its content does), or the hub dataset, config and revision."""
    task = get_task(task)
    kind, root = _choose_source(task, data_dir, source)
    if kind == "hub":
        return {"hub": task.hub_path, "config": task.hub_config, "revision": task.hub_revision}
    files = {}
    for split, path in sorted(local_paths(task, root).items()):
        if path.is_file():
            st = path.stat()
            files[split] = {"file": path.name, "bytes": st.st_size,
                            "sha256": file_sha256(str(path), st.st_size, st.st_mtime_ns)}
    return {"local": files}


# ----------------------------------------------------------------------------------------------------
# Local readers (cached per file; every reader returns hub-schema rows)
# ----------------------------------------------------------------------------------------------------
def _read_tsv(path: Path) -> List[Tuple[int, List[str]]]:
    """A GLUE TSV as (line number, fields): split on tabs, no quote handling, BOM stripped, blank lines dropped."""
    text = path.read_text(encoding="utf-8-sig")
    return [(n, line.rstrip("\r").split("\t")) for n, line in enumerate(text.split("\n"), 1) if line.strip("\r")]


def _expected_labels(task: Task) -> str:
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
        raise ValueError(f"label {value!r} is not one of {_expected_labels(task)}")
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
                                     f"header but another number of fields in this row. {_HUMSET_HELP}")
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
            raise ValueError(f"{path}, {where}: missing HumSet column(s) {sorted(missing)}. {_HUMSET_HELP}")
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
                                f"{_HOW_TO_GET_DATA}")
    return {s: _read_local(task, found[s]) for s in ("train", "test") if s in found}


def _humset_splits(task: Task, found: Dict[str, Path], paths: Dict[str, Path]) -> Dict[str, Rows]:
    """HumSet's official splits: train plus test (validation used as test if there is no test file)."""
    if "train" not in found or not ({"test", "validation"} & set(found)):
        folder = paths["train"].parent
        raise FileNotFoundError(f"task {task.name!r}: HumSet files not found in {folder} (need train and "
                                f"test or validation .jsonl/.json/.csv). {_HUMSET_HELP}")
    out = {s: _read_local(task, p) for s, p in found.items()}
    if "test" not in out:
        out["test"] = out.pop("validation")
    return out


def load_hub(task) -> Dict[str, Rows]:
    """Official splits from the Hugging Face hub (cached under cache_dir()/"hf"), as lists of dicts."""
    task = get_task(task)
    if task.hub_path is None:
        raise FileNotFoundError(f"task {task.name!r} is not on the Hugging Face hub. {_HUMSET_HELP}")
    where = f"{task.hub_path} (config {task.hub_config!r})"
    if not hub_reachable():
        raise ConnectionError(f"cannot load {where}: huggingface.co is unreachable (offline?). "
                              f"{_HOW_TO_GET_DATA} With a cached copy, set HF_DATASETS_OFFLINE=1.")
    import datasets

    try:
        dd = datasets.load_dataset(task.hub_path, task.hub_config, revision=task.hub_revision,
                                   cache_dir=str(cache_dir() / "hf"))
    except Exception as err:  # network, auth and cache errors all mean "no hub data here"
        raise ConnectionError(f"cannot load {where} from the hub: {err}. {_HOW_TO_GET_DATA}") from err
    return {ours: dd[theirs].to_list() for ours, theirs in task.hub_splits.items() if theirs in dd}


def load_raw(task, data_dir=None, source: str = "auto") -> Dict[str, Rows]:
    """Official splits {"train", "test"} (test = official dev; MNLI validation_matched) as hub-schema rows.

    source: "local" (files under data_dir / SCALEARN_DATA_DIR), "hub", or "auto" (local if the task's files
    are there, else hub). Offline QNLI / BoolQ have no train file: only "test" is returned.
    HumSet may also return its official "validation" split.
    """
    task = get_task(task)
    kind, root = _choose_source(task, data_dir, source)
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


# ----------------------------------------------------------------------------------------------------
# Processing: hub-schema rows -> uniform model inputs
# ----------------------------------------------------------------------------------------------------
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
            raise ValueError(f"task {task.name!r}, row {i}: label {y!r} is not one of {_expected_labels(task)}")


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


# ----------------------------------------------------------------------------------------------------
# Splits, subsampling, k-shot
# ----------------------------------------------------------------------------------------------------
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


def _no_train_error(task: Task, source_desc: str, paths: Optional[Dict[str, Path]] = None) -> ValueError:
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
        kind, root = _choose_source(task, data_dir, source)
        paths = local_paths(task, root) if kind == "local" and task.benchmark != "humset" else None
        raise _no_train_error(task, describe_source(task, data_dir, source), paths)
    train, validation, test = _protocol_splits(task, raw, seed)
    if k_shot is not None:
        train = first_k_shot(train, k_shot)
    elif max_train is not None:
        train = subsample(task, train, max_train, seed)
    return DatasetDict(train=train, validation=validation, test=test)


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


# ----------------------------------------------------------------------------------------------------
# Summaries for the `tasks` CLI command
# ----------------------------------------------------------------------------------------------------
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
