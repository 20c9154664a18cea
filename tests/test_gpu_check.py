"""benchmarks/gpu_check.sh: its CPU fallback path runs end to end (tiny shapes) and writes the JSON a GPU run
would write; random weights at roberta-base shapes need no download."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from scalearn_lite.params import random_base

ROOT = Path(__file__).resolve().parents[1]


def test_random_weights_at_roberta_base_shapes_need_no_download():
    base = random_base("roberta-base", 1)  # one layer of roberta-base: its shapes, built in
    cfg = base.config
    assert (cfg.model_type, cfg.hidden_size, cfg.vocab_size, cfg.num_hidden_layers) == ("roberta", 768, 50265, 1)
    assert cfg.num_attention_heads == 12 and cfg.intermediate_size == 3072


@pytest.mark.slow
def test_the_cpu_fallback_path_writes_the_gpu_json(data_dir, tmp_path):
    """--cpu with --assets: the notebook pass too (notebook 00 in full mode on a stand-in roberta-base and stand-in
    pf adapters, few steps), with its wall time; no GPU, so no peak memory."""
    from standins import pf_mirror, tiny_roberta

    assets = tmp_path / "assets"
    model = tiny_roberta(assets / "roberta-base", data_dir)
    pf_mirror(assets / "hub", model, ["mnli", "qnli", "qqp", "sst2", "stsb", "mrpc", "cola"])
    out = tmp_path / "gpu.json"
    env = {**os.environ, "PYTHON": sys.executable, "SCALEARN_DATA_DIR": str(data_dir), "GPU_CHECK_METHOD": "head_only",
           "GPU_CHECK_NOTEBOOKS": "00_quickstart", "SCALEARN_FULL_OVERRIDES": json.dumps(
               {"max_train": 48, "max_validation": 16, "max_test": 32})}
    run = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--cpu", "--out", str(out),
                          "--assets", str(assets)], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    res = json.loads(out.read_text())
    nb = res["notebooks"]
    assert nb["mode"].startswith("full") and [r["notebook"] for r in nb["runs"]] == ["00_quickstart"]
    assert nb["runs"][0]["exit_code"] == 0 and nb["runs"][0]["seconds"] > 0 and nb["runs"][0]["peak_gpu_mib"] is None
    assert res["seconds"]["notebooks_limit"] == 600
    assert res["device"] == "cpu" and "fallback" in res["check"] and res["seconds"]["limit"] == 480
    bench = res["bench"]
    assert bench["setup"]["random_weights"] and bench["machine"]["device"] == "cpu"
    assert {"floor", "adapter", "scalearn-S1", "scalearn-S2", "loop-S2", "fusion-S2"} <= set(bench["train"])
    t = res["transfer"]
    assert t["target"] == "mrpc" and t["method"] == "head_only" and 0 <= t["test_metric"] <= 1
    assert t["precision"].startswith("cpu") and "gpu_check (cpu)" in run.stdout


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_without_cuda_the_gpu_path_says_how_to_run_the_fallback():
    run = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh")], capture_output=True, text=True,
                         env={**os.environ, "PYTHON": sys.executable}, timeout=120)
    assert run.returncode == 2 and "--cpu" in run.stderr


def test_the_notebook_pass_is_skipped_and_says_why_without_assets(tmp_path):
    """The JSON says why no notebook ran (no --assets), rather than leaving the pass out silently."""
    text = (ROOT / "benchmarks" / "gpu_check.sh").read_text()
    assert "--download" in text and "no assets (pass --assets DIR" in text and "peak_gpu_mib" in text
