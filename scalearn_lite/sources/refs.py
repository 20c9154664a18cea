"""Source references: a task name (its stage-1 adapter is trained or taken from the cache), an adapter folder, or
an AdapterHub id. Their order in a transfer (the target's own adapter last), their names, and which stage-1
adapter each one stands for.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

from .. import hub
from ..config import Preset
from ..tasks import Task, get_task
from .store import adapter_folder_name


def order_sources(target: Task, sources: Sequence[str], include_target: bool = True) -> List[str]:
    """The paper's protocol: the target's own adapter is a source, placed last (unless excluded)."""
    names = [s.strip() for s in sources if s and s.strip()]
    own = [s for s in names if same_task(s, target)]
    rest = [s for s in names if not same_task(s, target)]
    ordered = rest + (own or [target.name]) if include_target else rest
    if not ordered and own:
        raise ValueError(f"the only source given, {own[0]!r}, is the target {target.name!r} itself, which "
                         "--exclude-target (include_target=False) removes: add other sources, or drop --exclude-target")
    if not ordered:
        raise ValueError("empty source list: give at least one source task, adapter folder or hub id")
    keys = [_source_key(s) for s in ordered]  # "cola" and "CoLA", a folder and its absolute path: one source
    dupes = sorted({s for s, k in zip(ordered, keys) if keys.count(k) > 1})
    if dupes:
        raise ValueError(f"duplicate sources {dupes}: list each source once")
    return ordered


def _source_key(ref: str) -> str:
    """What a source reference means: its task name, a folder's resolved path, or the hub id."""
    if task_name_of(ref):
        return task_name_of(ref)
    folder = Path(ref).expanduser()
    return str(folder.resolve()) if folder.is_dir() else ref


def ref_kind(ref: str) -> str:
    """What a source reference is: "folder" (an adapter folder here), "hub" (an AdapterHub id that names no task:
    "glue/cola" is the task, as it is as a target) or "task" (a task name; anything else, for source_task to say
    what is wrong with it)."""
    if Path(ref).expanduser().is_dir():
        return "folder"
    if hub.is_hub_id(ref) and task_name_of(ref) is None:
        return "hub"
    return "task"


def task_name_of(ref: str) -> Optional[str]:
    """The canonical task name if `ref` names a task, else None (a folder or hub id)."""
    try:
        return get_task(ref).name
    except ValueError:
        return None


def same_task(ref: str, task: Task) -> bool:
    return task_name_of(ref) == task.name


def is_task_ref(ref: str) -> bool:
    return task_name_of(ref) is not None


def source_label(ref: str) -> str:
    """A short adapter name for a reference: the task name; for a folder the task (or adapter name) it was saved
    with; else the folder / hub id tail."""
    name = task_name_of(ref) or (adapter_folder_name(ref) if Path(ref).is_dir() else None)
    return re.sub(r"[^A-Za-z0-9_-]+", "_", name or Path(ref.rstrip("/")).name)


def source_names(refs: Sequence[str]) -> List[str]:
    """source_label of each reference, made unique by a suffix ("rte", "rte_2") where two would collide."""
    names: List[str] = []
    for ref in refs:
        base = name = source_label(ref)
        i = 2
        while name in names:
            name, i = f"{base}_{i}", i + 1
        names.append(name)
    return names


def own_adapter_seed(preset: Preset, seed: int) -> int:
    """The seed of the target's own adapter inside a stage-2 run: seed 0's for every seed (the authors) or
    the run's own (preset.own_adapter_seed="per_seed")."""
    return seed if preset.own_adapter_seed == "per_seed" else 0


@dataclass(frozen=True)
class Stage1Adapter:
    """One stage-1 adapter a transfer loads: a source of the zoo (seed 0, the source budget) or the target's own
    adapter (role "target": the target budget or k-shot)."""

    task: str
    seed: int = 0
    k_shot: Optional[int] = None
    role: str = "source"


def stage1_adapter(ref: str, target: Task, preset: Preset, seed: int, k_shot: Optional[int]) -> Optional[Stage1Adapter]:
    """The stage-1 adapter that a transfer to `target` (run seed `seed`, k-shot or full data) loads for the source
    `ref`: the target's own adapter (seed own_adapter_seed, the target budget or k-shot), another task's zoo adapter
    (seed 0, the source budget), or None for an adapter folder or hub id (nothing to train)."""
    name = task_name_of(ref)
    if name is None:
        return None
    return Stage1Adapter(name, own_adapter_seed(preset, seed), k_shot, "target") if name == target.name \
        else Stage1Adapter(name)


def source_task(ref: str) -> Task:
    """The task a source reference names, or a clear error (a path that does not exist, or an unknown name)."""
    try:
        return get_task(ref)
    except ValueError:
        pass
    if any(c in ref for c in ("/", "\\", "~")) or ref.startswith("."):
        raise FileNotFoundError(f"source {ref!r}: adapter folder {Path(ref).expanduser().absolute()} does not exist "
                                "(and it is not a hub id like AdapterHub/roberta-base-rte_pfeiffer)")
    raise ValueError(f"source {ref!r} is neither a task name, an adapter folder nor a hub id "
                     "(like AdapterHub/roberta-base-rte_pfeiffer)")
