"""Several processes: which one this is (accelerate / torchrun ranks), a barrier between them, and stopping a pool
of worker processes on Ctrl-C."""
from __future__ import annotations

import contextlib
import os
from typing import Iterator, Tuple


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


@contextlib.contextmanager
def stop_on_interrupt(pool) -> Iterator[None]:
    """Around the work of a concurrent.futures ProcessPoolExecutor (inside its `with`): on Ctrl-C (or any error)
    the queued runs are cancelled and the workers stopped, so the executor's exit does not wait for them; run
    folders are written atomically, so the ones already finished stay valid and the rest are simply absent."""
    try:
        yield
    except BaseException:
        processes = list((getattr(pool, "_processes", None) or {}).values())  # before shutdown forgets them
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in processes:
            if proc.is_alive():
                proc.terminate()
        for proc in processes:
            proc.join(timeout=10)
            if proc.exitcode is None and proc.is_alive():  # SIGTERM not obeyed in 10 s: SIGKILL cannot be refused
                proc.kill()
                proc.join(timeout=5)
        raise


def is_main_process() -> bool:
    return process_info()[0] == 0


def wait_for_everyone() -> None:
    """A barrier across processes (no-op in a single process)."""
    if process_info()[1] > 1:
        from accelerate.state import PartialState

        PartialState().wait_for_everyone()
