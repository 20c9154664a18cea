"""The job runner (scalearn_lite/jobs.py): --jobs 2 gives the sequential runs in the same order, finished folders are
read without stage 1, and the notebooks go through the same runner into the same run folders as the demo."""
import pandas as pd
import pytest

from scalearn_lite.config import get_preset
from standins import cli


def test_parallel_jobs_give_the_sequential_runs(data_dir, tmp_path):
    """--jobs 2: stage 1 first in the parent, then the runs in two processes; same runs, same table."""
    args = ["--preset", "tiny", "--data-dir", str(data_dir), "--targets", "mrpc", "--sources", "rte",
            "--methods", "scalearn_uniform_pp,adapter,head_only", "--seeds", "1", "--quiet"]
    seq = cli("demo", *args, "--out", str(tmp_path / "seq"), "--jobs", "1")
    par = cli("demo", *args, "--out", str(tmp_path / "par"), "--jobs", "2")
    assert seq.returncode == 0 and par.returncode == 0, par.stderr
    a, b = (pd.read_csv(tmp_path / d / "runs.csv") for d in ("seq", "par"))
    assert list(a.method) == list(b.method) == ["scalearn_uniform_pp", "adapter", "head_only"]  # job order kept
    assert list(b.value) == pytest.approx(list(a.value), abs=0.5)  # 1 vs 2 torch threads: at most one flip in 200
    assert list(a.transfer_params) == list(b.transfer_params)


def test_parallel_jobs_reuse_finished_folders_without_stage_1(data_dir, tmp_path, monkeypatch):
    """--jobs 2 over finished run folders: read in the parent; stage 1 is not resolved for them."""
    import importlib

    from scalearn_lite import jobs as jobs_mod

    transfer_module = importlib.import_module("scalearn_lite.transfer")  # (the package exports the function `transfer`)

    args = ["--preset", "tiny", "--data-dir", str(data_dir), "--targets", "mrpc", "--sources", "rte",
            "--methods", "scalearn_uniform_pp,head_only", "--seeds", "1", "--quiet", "--out", str(tmp_path)]
    assert cli("demo", *args, "--jobs", "1").returncode == 0
    before = pd.read_csv(tmp_path / "runs.csv")

    def no_stage1(*a, **k):
        raise AssertionError("stage 1 resolved for a finished run folder")

    monkeypatch.setattr(transfer_module, "train_stage1", no_stage1)
    jobs = [jobs_mod.Job("mrpc", ["rte"], m, 0) for m in ("scalearn_uniform_pp", "head_only")]
    rows = jobs_mod.run_jobs(jobs, get_preset("tiny"), data_dir=data_dir, root=tmp_path / "runs", progress=False,
                             workers=2)
    assert list(rows.method) == list(before.method)
    assert list(rows.value) == pytest.approx(list(before.value))


def test_the_notebooks_and_the_demo_share_one_job_runner_and_one_run_folder_layout(data_dir, tmp_path, monkeypatch):
    """notebook.run_many goes through jobs.run_jobs into transfer's folder layout (under runs/notebooks/<preset>);
    a second call reuses every folder and gives the same scores."""
    from scalearn_lite import notebook
    from scalearn_lite.transfer import run_folder

    monkeypatch.setenv("SCALEARN_RUNS_DIR", str(tmp_path))
    monkeypatch.setenv("SCALEARN_DATA_DIR", str(data_dir))
    tiny, methods = get_preset("tiny"), ("scalearn_uniform_pp", "head_only")
    first = notebook.run_many("mrpc", ["rte"], methods, tiny, seeds=(1,))
    assert list(first.path) == [str(run_folder("mrpc", ["rte"], m, tiny, seed=1, root=tmp_path / "tiny"))
                                for m in methods]
    assert list(first.seed) == [1, 1] and list(first.method) == list(methods)
    again = notebook.run_many("mrpc", ["rte"], methods, tiny, seeds=(1,))
    assert list(again.test_metric) == list(first.test_metric) and list(again.path) == list(first.path)
