"""Several processes: only the main one writes a folder; a transfer run under 2 CPU processes equals the
single-process run; Ctrl-C stops the workers promptly."""
import importlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from scalearn_lite import files, processes
from scalearn_lite.config import get_preset

tr = importlib.import_module("scalearn_lite.transfer")
from scalearn_lite import runs as runs_mod
ROOT = Path(__file__).resolve().parents[1]


# -------------------------------------------------------- several processes: only the main one writes
def test_only_the_main_process_writes_a_folder(tmp_path, monkeypatch):
    waits = []
    monkeypatch.setattr(processes, "wait_for_everyone", lambda: waits.append(1))
    monkeypatch.setattr(processes, "process_info", lambda: (1, 2))  # the second of two processes
    with files.atomic_dir(tmp_path / "run") as tmp:
        (tmp / "metrics.json").write_text("{}")
    assert not (tmp_path / "run").exists() and not list(tmp_path.iterdir()) and waits == [1]
    monkeypatch.setattr(processes, "process_info", lambda: (0, 2))  # the main one
    with files.atomic_dir(tmp_path / "run") as tmp:
        (tmp / "metrics.json").write_text("{}")
    assert (tmp_path / "run" / "metrics.json").is_file() and waits == [1, 1]  # written, then the barrier


def _dropout_free_model(folder: Path) -> Path:
    """A tiny random BERT with every dropout at 0 (the embedded model's tokenizer): with no random masks, two
    processes that each see half of every batch must compute what one process computes on the whole batch."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from scalearn_lite.models import embedded_model_path

    tok = AutoTokenizer.from_pretrained(embedded_model_path())
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    BertModel(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def _free_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


@pytest.mark.slow
def test_two_cpu_processes_train_the_same_run_as_one(data_dir, tmp_path):
    model = _dropout_free_model(tmp_path / "tiny-nodrop")
    args = ["mrpc", "--sources", "rte", "--exclude-target", "--method", "scalearn", "--preset", "tiny", "--model",
            str(model), "--data-dir", str(data_dir), "--quiet"]
    one = tr.transfer("mrpc", ["rte"], "scalearn", get_preset("tiny"), model=str(model), data_dir=data_dir,
                      out=tmp_path / "one", include_target=False, progress=False)  # also trains (caches) the source
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
              "--main_process_port", _free_port(), "-m", "scalearn_lite", "transfer"]
    out = subprocess.run(launch + args + ["--out", str(tmp_path / "two")], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.count("ScaLearn → mrpc") == 1  # one report, from the main process
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "tiny-nodrop", "two"]  # no leftover temp folder
    a, b = one.metrics, json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert (a["steps"], a["best_epoch"], a["rows"]) == (b["steps"], b["best_epoch"], b["rows"])
    assert b["test"]["accuracy"] == a["test"]["accuracy"]  # the same predictions on all 200 test rows
    assert b["validation"]["loss"] == pytest.approx(a["validation"]["loss"], abs=1e-5)
    oa, ob = runs_mod.load_omega(one.path)["omega"], runs_mod.load_omega(tmp_path / "two")["omega"]
    assert torch.allclose(oa, ob, atol=1e-5), (oa - ob).abs().max()  # ω: float rounding only (measured 1.2e-7)


# -------------------------------------------------------------------------------- Ctrl-C with workers
def test_ctrl_c_cancels_queued_work_and_stops_the_workers_promptly():
    import multiprocessing
    import time
    from concurrent.futures import ProcessPoolExecutor

    from scalearn_lite.processes import stop_on_interrupt

    start = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool, stop_on_interrupt(pool):
            assert len({pool.submit(os.getpid).result() for _ in range(4)}) >= 1  # workers up
            futures = [pool.submit(time.sleep, 30) for _ in range(6)]  # two running, four queued
            time.sleep(1)
            processes = list(pool._processes.values())
            assert processes and all(p.is_alive() for p in processes)
            start = time.perf_counter()
            raise KeyboardInterrupt  # what Ctrl-C raises in the main process
    assert time.perf_counter() - start < 15  # not three rounds of 30 s
    # queued ones are cancelled (how many were already handed to the call queue, and die with their worker, depends
    # on timing: CPython moves up to workers + 1 calls ahead, more on a busy machine)
    assert sum(f.cancelled() for f in futures) >= 1
    # and no worker is left. The executor's manager thread may reap a dead worker at the same moment as our join
    # does; the loser's waitpid gets ECHILD and Process.is_alive() reads True until the winner records the exit code
    # (CI saw this once), so dead-ness is read from the sentinel, which is ready as soon as the process has exited.
    from multiprocessing.connection import wait as wait_ready

    pending, deadline = [p.sentinel for p in processes], time.monotonic() + 5
    while pending and time.monotonic() < deadline:
        pending = [s for s in pending if s not in wait_ready(pending, timeout=deadline - time.monotonic())]
    assert not pending, "a worker is still running 5 s after the interrupt was handled"
