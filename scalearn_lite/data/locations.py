"""Where a task's data lives: the data dir, the cache dir, local file paths, local files or the hub, and the data's
identity (file sha256s or the hub revision) for cache keys.
"""
from __future__ import annotations

import functools
import os
import socket
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

from ..files import file_sha256 as _hash_file
from ..tasks import Task, get_task


ENV_DATA_DIR = "SCALEARN_DATA_DIR"
ENV_CACHE_DIR = "SCALEARN_CACHE_DIR"
SOURCES = ("auto", "local", "hub")
Rows = List[Dict[str, Any]]


HOW_TO_GET_DATA = (
    "Set SCALEARN_DATA_DIR (or pass data_dir= / --data-dir) to a folder that holds glue_data/ and superglue/ "
    "in the classic GLUE / official SuperGLUE layouts (e.g. ../shared/data from the repository root), "
    "or use source='hub' with internet access."
)


HUMSET_HELP = (
    "HumSet is access-gated by its owners and is never bundled: request it from them, then pass "
    "data_dir= (or SCALEARN_DATA_DIR) pointing at a folder holding train / validation / test files "
    "(.jsonl, .json or .csv) with the columns entry_id, lead_id, project_id, lang, excerpt, sectors, "
    "pillars_1d, pillars_2d, subpillars_1d, subpillars_2d (label columns: lists of strings), "
    "either directly or in a humset/ subfolder."
)


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
    root = Path(package_dir or Path(__file__).resolve().parents[1]).parent  # package_dir: scalearn_lite/
    if (root / "pyproject.toml").is_file():
        return root / "data_cache"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "scalearn_lite"


def humset_dir(root: Path) -> Path:
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
        help_text = HUMSET_HELP if task.benchmark == "humset" else HOW_TO_GET_DATA
        raise FileNotFoundError(f"no data dir given for task {task.name!r}. {help_text}")
    if task.benchmark == "humset":
        folder = humset_dir(root)
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
        raise FileNotFoundError(f"data dir {root} (from {given}) does not exist or is not a folder. {HOW_TO_GET_DATA}")
    return root


def choose_source(task: Task, data_dir, source: str) -> Tuple[str, Optional[Path]]:
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
    kind, root = choose_source(task, data_dir, source)
    return kind == "hub" or (root is not None and "train" in task.local_files
                             and local_paths(task, root)["train"].is_file())


def may_train_on_dev(task) -> bool:
    """True for the tasks declared dev-only offline (QNLI, BoolQ): as *sources* they may train on a 90/10 split
    of their dev file. Every other task's dev file is its test set and is never trained on."""
    task = get_task(task)
    return "test" in task.offline_splits and "train" not in task.offline_splits


def describe_source(task, data_dir=None, source: str = "auto") -> str:
    """Where a task's data would come from: a local folder path or a hub id ("aps/super_glue:cb")."""
    task = get_task(task)
    kind, root = choose_source(task, data_dir, source)
    if kind == "hub":
        return f"{task.hub_path}:{task.hub_config}"
    if root is None:
        return "no data dir"
    return str(humset_dir(root) if task.benchmark == "humset" else root / task.local_dir)


@functools.lru_cache(maxsize=64)
def file_sha256(path: str, size: int, mtime_ns: int) -> str:
    """files.file_sha256, remembered per (path, size, mtime): a data file is hashed once per process."""
    return _hash_file(path)


def data_identity(task, data_dir=None, source: str = "auto") -> Dict[str, Any]:
    """What a task's rows are read from, for cache keys: each local file's name, size and sha256 (the folder it
    sits in does not matter, its content does), or the hub dataset, config and revision."""
    task = get_task(task)
    kind, root = choose_source(task, data_dir, source)
    if kind == "hub":
        return {"hub": task.hub_path, "config": task.hub_config, "revision": task.hub_revision}
    files = {}
    for split, path in sorted(local_paths(task, root).items()):
        if path.is_file():
            st = path.stat()
            files[split] = {"file": path.name, "bytes": st.st_size,
                            "sha256": file_sha256(str(path), st.st_size, st.st_mtime_ns)}
    return {"local": files}
