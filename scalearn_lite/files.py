"""Atomic artefact writing: a killed run never leaves a folder or file that looks complete.

One writer per folder at a time (`folder_lock`, a lock file beside it); temporary folders that a killed
writer left behind are removed by the next writer of the same folder.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Dict, Iterator, Optional

from . import processes

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; writes stay atomic, concurrent writers are not serialised
    fcntl = None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _open_tmp(path: Path):
    """A temporary file beside `path` with the permissions a plain open() would give (mkstemp uses 0600)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.chmod(tmp, 0o666 & ~_umask())
    return fd, tmp


class DiskFullError(OSError):
    """No space left (or quota exceeded) while writing: one line naming the file or folder."""


def is_disk_full(err: BaseException) -> bool:
    """True for ENOSPC / EDQUOT, also as the text of a library's own error (safetensors: "StorageFull")."""
    if isinstance(err, DiskFullError):
        return True
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return True
    text = str(err)
    return "No space left on device" in text or "StorageFull" in text or "Disk quota exceeded" in text


def _short(err: BaseException) -> str:
    text = getattr(err, "strerror", None) or str(err)
    return text.splitlines()[0] if text else type(err).__name__


def _write_atomically(path, fill) -> None:
    """Write `path` through a temporary file beside it renamed into place; on failure the temporary file is removed
    and the error names `path` (DiskFullError when the disk is full)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        fd, tmp = _open_tmp(path)
        with os.fdopen(fd, "w") as fh:
            fill(fh)
        os.replace(tmp, path)
    except OSError as err:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if is_disk_full(err):
            raise DiskFullError(f"cannot write {path}: no space left on the device; free some space and "
                                "rerun") from None
        raise OSError(f"cannot write {path}: {_short(err)}") from None
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path, obj) -> None:
    """Write JSON to `path` atomically (temporary file in the same folder, then rename)."""
    def fill(fh):
        json.dump(obj, fh, indent=2, sort_keys=False, default=float)
        fh.write("\n")

    _write_atomically(path, fill)


def write_text(path, text: str) -> None:
    """Write text to `path` atomically."""
    _write_atomically(path, lambda fh: fh.write(text))


def read_json(path) -> dict:
    """Read a JSON file, with an error that names the file when it is corrupt."""
    try:
        with open(path) as fh:
            return json.load(fh)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is corrupt ({err}); delete its folder and rerun to recreate it") from None


# ------------------------------------------------------------------ folders of ours, and their manifest
MANIFEST = "manifest.json"  # {"files": {relative path: {"bytes", "sha256"}}}: written by atomic_dir, last
# Every name the package's writers put in a folder they own (run folders, stage-1 adapter folders, older layouts);
# a folder holding anything else is not ours, and nothing here replaces it.
OWN_NAMES = frozenset({
    MANIFEST, "metrics.json", "config.json", "history.csv", "omega.json", "omega.safetensors", "omega.pt", "head",
    "fusion", "scalearn_source.json", "adapter_config.json", "adapter.safetensors", "pytorch_adapter.bin",
    "head_config.json", "model_head.safetensors", "pytorch_model_head.bin", "adapter_fusion_config.json",
    "model_adapter_fusion.safetensors", "pytorch_model_adapter_fusion.bin"})
OWN_MARKERS = (MANIFEST, "metrics.json", "scalearn_source.json")  # one of these: a folder this package wrote


def foreign_entries(folder) -> list:
    """The entries of an existing folder that stop it counting as ours ([] for an empty folder or one of ours):
    every entry if it has none of OWN_MARKERS, else the entries whose names this package never writes."""
    folder = Path(folder)
    names = sorted(p.name for p in folder.iterdir())
    if not names:
        return []
    if not any(m in names for m in OWN_MARKERS):
        return names
    return [n for n in names if n not in OWN_NAMES]


def check_replaceable(final, what: str = "output folder") -> None:
    """Refuse (FileExistsError, one line) to replace an existing folder that this package did not write: only a
    missing or empty folder, or one of ours (foreign_entries), may be replaced, so a user's files are never lost."""
    final = Path(final)
    if final.is_symlink() or not final.is_dir():
        return
    foreign = foreign_entries(final)
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise FileExistsError(f"refusing to write {what} {final}: it holds files scalearn_lite did not write "
                              f"({shown}), which would be deleted; choose another --out (a new or empty folder)")


FINISHED = "metrics.json"  # written last into every run and stage-1 folder: its presence means finished


def is_finished(folder) -> bool:
    """A run or stage-1 adapter folder is finished once its metrics.json exists (folders appear complete or not at
    all: atomic_dir swaps them in whole)."""
    return (Path(folder) / FINISHED).is_file()


def file_sha256(path) -> str:
    """The sha256 of a file's bytes (read in 1 MiB chunks), as hex: the one hash of files in this package."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_manifest(folder) -> None:
    """MANIFEST in `folder`: the size and sha256 of every file below it (itself excepted)."""
    folder = Path(folder)
    files = {str(p.relative_to(folder).as_posix()): {"bytes": p.stat().st_size, "sha256": file_sha256(p)}
             for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MANIFEST}
    write_json(folder / MANIFEST, {"files": files})


def damage(folder) -> Optional[str]:
    """Why a folder's files differ from its MANIFEST ("omega.safetensors has 12 bytes, 1,234 were written"), or None
    when they match or the folder has no manifest (written before manifests were)."""
    folder = Path(folder)
    if not (folder / MANIFEST).is_file():
        return None
    try:
        files = read_json(folder / MANIFEST)["files"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        return f"{MANIFEST} is unreadable ({err})"
    for name, rec in files.items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        size = path.stat().st_size
        if size != rec["bytes"]:
            return f"{name} has {size:,} bytes, {rec['bytes']:,} were written (truncated or replaced)"
        if file_sha256(path) != rec["sha256"]:
            return f"{name} does not match the sha256 recorded when it was written"
    return None


def check_writable(final, what: str = "output folder") -> None:
    """Raise an OSError naming the path, before any long work, if the folder `final` could not be written, or if it
    exists and is not ours to replace (check_replaceable)."""
    final = Path(final)
    if final.exists() and not final.is_dir():
        raise FileExistsError(f"cannot write {what} {final}: a file of that name exists; choose another path")
    if final.resolve() == Path.cwd().resolve() or final.resolve() in Path.cwd().resolve().parents:
        raise FileExistsError(f"cannot write {what} {final}: it is the current folder (or holds it); choose a new "
                              "folder for --out")
    check_replaceable(final, what)
    parent = final.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise NotADirectoryError(f"cannot write {what} {final}: {parent} is a file, not a folder; choose another path")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(f"cannot write {what} {final}: no write permission in {parent}; choose another path")


_HELD: Dict[str, int] = {}  # lock files this process holds -> nesting depth (the lock is re-entrant per process)


def _lock_path(final: Path) -> Path:
    return final.with_name(f".{final.name}.lock")


def _holder(path: Path) -> str:
    try:
        return path.read_text().strip() or "?"
    except OSError:
        return "?"


def _acquire(path: Path, what: str, final: Path) -> int:
    """An fd holding an exclusive flock on `path`; waits (saying so once) while another process holds it."""
    told = False
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666 & ~_umask())
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not told:
                print(f"waiting: another process (pid {_holder(path)}) is writing the {what} {final}",
                      file=sys.stderr, flush=True)
                told = True
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:  # the previous holder unlinks the file on release: only a lock on the file still there counts
            current = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            current = False
        if current:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        os.close(fd)


@contextlib.contextmanager
def folder_lock(final, what: str = "folder") -> Iterator[None]:
    """Hold the exclusive right to write the folder `final` (lock file `.<name>.lock` beside it, removed on
    release). Another process holding it: wait for it. Re-entrant within one process.

    Under several processes of one job (accelerate launch, torchrun) only the main process takes the lock: the
    others write nothing (see atomic_dir), and making them wait for it would deadlock them against the main
    process, which waits for them in every collective."""
    final = Path(final).absolute()
    key = str(final)
    if fcntl is None or key in _HELD or not processes.is_main_process():
        _HELD[key] = _HELD.get(key, 0) + 1
        try:
            yield
        finally:
            _HELD[key] -= 1
            if not _HELD[key]:
                del _HELD[key]
        return
    final.parent.mkdir(parents=True, exist_ok=True)
    path = _lock_path(final)
    fd = _acquire(path, what, final)
    _HELD[key] = 1
    try:
        yield
    finally:
        del _HELD[key]
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        os.close(fd)


def remove_stale_temps(final) -> None:
    """Delete `.<name>.tmp-*` / `.<name>.old-*` beside `final`: what a killed writer of it left (call under its lock)."""
    final = Path(final)
    pattern = re.compile(rf"\.{re.escape(final.name)}\.(tmp|old)-[A-Za-z0-9_]+")
    if not final.parent.is_dir():
        return
    for path in final.parent.iterdir():
        if pattern.fullmatch(path.name):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def _swap_in(tmp: Path, final: Path) -> None:
    """Rename `tmp` to `final`; an existing `final` is replaced (only a folder of ours: check_replaceable), and
    restored if the rename fails."""
    if not final.exists() and not final.is_symlink():
        os.replace(tmp, final)
        return
    check_replaceable(final)
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    os.replace(final, old)
    try:
        os.replace(tmp, final)
    except BaseException:
        os.replace(old, final)
        raise
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old, ignore_errors=True)
    else:
        old.unlink(missing_ok=True)


@contextlib.contextmanager
def _atomic_dir(final) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success it replaces `final` in one rename, on error it is removed.

    Holds `folder_lock(final)` meanwhile, and first removes temporary folders a killed writer of `final` left.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    with folder_lock(final):
        remove_stale_temps(final)
        tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.tmp-"))
        os.chmod(tmp, 0o777 & ~_umask())
        try:
            check_replaceable(final)  # before the caller's work, not only at the swap
            yield tmp
            write_manifest(tmp)  # sizes and sha256 of everything written, checked before reuse (damage)
            _swap_in(tmp, final)
        except Exception as err:
            if is_disk_full(err):  # any writer's way of saying so (safetensors, torch, json): one line, the folder
                raise DiskFullError(f"cannot write {final}: no space left on the device ({_short(err)}); nothing "
                                    "was saved there (a finished folder that was there is kept): free some space "
                                    "and rerun") from None
            raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)  # gone already after a successful swap


@contextlib.contextmanager
def atomic_dir(final) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success it replaces `final` in one rename, on error it is removed.

    Under several processes (accelerate launch, torchrun) only the main one writes `final`: the others get a
    throwaway folder, and every process waits until `final` is in place before going on.
    """
    if not processes.is_main_process():
        with tempfile.TemporaryDirectory(prefix=".scalearn-not-main-") as scratch:
            yield Path(scratch)
        processes.wait_for_everyone()
        return
    with _atomic_dir(final) as tmp:
        yield tmp
    processes.wait_for_everyone()
