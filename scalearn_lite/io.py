"""Atomic artefact writing: a killed run never leaves a folder or file that looks complete."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator, Tuple


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _open_tmp(path: Path):
    """A temporary file beside `path` with the permissions a plain open() would give (mkstemp uses 0600)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.chmod(tmp, 0o666 & ~_umask())
    return fd, tmp


def write_json(path, obj) -> None:
    """Write JSON to `path` atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _open_tmp(path)
    with os.fdopen(fd, "w") as fh:
        json.dump(obj, fh, indent=2, sort_keys=False, default=float)
        fh.write("\n")
    os.replace(tmp, path)


def write_text(path, text: str) -> None:
    """Write text to `path` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _open_tmp(path)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def read_json(path) -> dict:
    """Read a JSON file, with an error that names the file when it is corrupt."""
    try:
        with open(path) as fh:
            return json.load(fh)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is corrupt ({err}); delete its folder and rerun to recreate it") from None


def process_info() -> Tuple[int, int]:
    """(this process's index, number of processes): accelerate's state once an Accelerator exists, else the
    RANK / WORLD_SIZE that torchrun and `accelerate launch` set; (0, 1) in a plain single process."""
    try:
        from accelerate.state import PartialState

        if PartialState._shared_state != {}:  # an Accelerator / PartialState was created in this process
            state = PartialState()
            return state.process_index, state.num_processes
    except ImportError:
        pass
    return int(os.environ.get("RANK", "0") or 0), int(os.environ.get("WORLD_SIZE", "1") or 1)


def is_main_process() -> bool:
    return process_info()[0] == 0


def wait_for_everyone() -> None:
    """A barrier across processes (no-op in a single process)."""
    if process_info()[1] > 1:
        from accelerate.state import PartialState

        PartialState().wait_for_everyone()


@contextlib.contextmanager
def atomic_dir(final) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success it replaces `final` in one rename, on error it is removed.

    Under several processes (accelerate launch, torchrun) only the main one writes `final`: the others get a
    throwaway folder, and every process waits until `final` is in place before going on.
    """
    if not is_main_process():
        with tempfile.TemporaryDirectory(prefix=".scalearn-not-main-") as scratch:
            yield Path(scratch)
        wait_for_everyone()
        return
    with _atomic_dir(final) as tmp:
        yield tmp
    wait_for_everyone()


@contextlib.contextmanager
def _atomic_dir(final) -> Iterator[Path]:
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.tmp-"))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)
