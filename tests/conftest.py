"""Shared fixtures: offline, CPU, a private cache for everything the tests train."""
import os
import sys
import tempfile
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
# absolute: the notebooks the tests execute run in notebooks/, where a relative path would point elsewhere
DATA_DIR = Path(os.environ.get("SCALEARN_DATA_DIR") or ROOT.parent / "shared" / "data").resolve()

# Everything trained by the tests (and by notebooks they execute) goes to one throwaway cache,
# shared across test files so a source adapter is trained once per session.
os.environ.setdefault("SCALEARN_CACHE_DIR", tempfile.mkdtemp(prefix="scalearn-test-cache-"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(autouse=True)
def _close_figures():
    """The figures a test drew are closed after it (where pyplot was imported at all: no test loads it for this)."""
    yield
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        plt.close("all")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real GLUE/SuperGLUE files; tests that need them skip, naming the path, when absent."""
    if not (DATA_DIR / "glue_data").is_dir():
        pytest.skip(f"real GLUE/SuperGLUE data not found at {DATA_DIR} (set SCALEARN_DATA_DIR)")
    return DATA_DIR


@pytest.fixture(scope="module")
def rte_adapter(data_dir):
    """The tiny preset's cached RTE adapter (trained once per test session)."""
    from scalearn_lite.config import get_preset
    from scalearn_lite.sources import train_source

    return train_source("rte", get_preset("tiny"), data_dir=data_dir, seed=0, progress=False).path


def tiny_config(kind: str, hidden: int = 32, layers: int = 2):
    """A tiny random BERT or RoBERTa config (vocab 120, 2 heads)."""
    from transformers import BertConfig, RobertaConfig

    cls = {"bert": BertConfig, "roberta": RobertaConfig}[kind]
    return cls(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2, intermediate_size=2 * hidden,
               vocab_size=120, max_position_embeddings=80, pad_token_id=1)


def paper_transfer_params(method: str, layers: int, sources: int, hidden: int) -> int:
    """The paper's count of what each ω method learns: L·S·d, L·S, S·d, S; the fixed-ω controls learn nothing."""
    return {"scalearn": layers * sources * hidden, "scalearn_uniform": layers * sources,
            "scalearn_pp": sources * hidden, "scalearn_uniform_pp": sources, "fixed_omega": 0, "average": 0}[method]
