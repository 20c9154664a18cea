"""A synthetic ScaLearn run folder and a random ScaLearn model: what the tests of analysis, viz and widgets read."""
import csv
import json

import numpy as np
import torch

from conftest import tiny_config
from scalearn_lite.config import VARIANTS
from scalearn_lite.models import from_config
from scalearn_lite.scaling import AdapterWeights, ScaLearn, attach

SOURCES = ["sst2", "rte", "mrpc"]


def write_run(folder, seed=0, layers=3, hidden=4, sources=SOURCES, vector=True, epochs=3):
    """A synthetic ScaLearn run folder: omega.json (with negative values), history.csv with ω snapshots, metrics."""
    g = np.random.default_rng(seed)
    per_unit = g.normal(0.3, 0.6, size=(layers, len(sources), hidden))  # (L, S, d), some entries < 0
    per_unit[0, 1] -= 1.5  # one clearly negative cell
    folder.mkdir(parents=True)
    (folder / "omega.json").write_text(json.dumps({
        "sources": sources, "num_layers": layers, "omega_shape": "vector" if vector else "scalar",
        "share_layers": False, "per_layer_source": per_unit.mean(-1).tolist(),
        "per_unit": per_unit.tolist() if vector else None}))
    with open(folder / "history.csv", "w", newline="") as fh:
        cols = ["epoch", "train_loss"] + [f"omega/{l}/{s}" for l in range(layers) for s in sources]
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        for e in range(epochs):
            w.writerow({"epoch": e, "train_loss": 1.0 / (e + 1),
                        **{f"omega/{l}/{s}": 2 / len(sources) + 0.1 * e * (i - 1)
                           for l in range(layers) for i, s in enumerate(sources)}})
    (folder / "metrics.json").write_text(json.dumps({"method": "scalearn", "test_metric": 0.7}))
    return folder, per_unit


def random_scalearn_model(hidden=32, layers=2, S=3):
    torch.manual_seed(0)
    model = from_config(tiny_config("bert", hidden=hidden, layers=layers))
    r = hidden // 16
    bank = [[AdapterWeights(torch.randn(r, hidden), torch.randn(r), torch.randn(hidden, r), torch.randn(hidden))
             for _ in range(S)] for _ in range(layers)]
    sl = attach(model, ScaLearn(VARIANTS["scalearn"], SOURCES[:S], bank, hidden))
    with torch.no_grad():
        sl.omega.weight.normal_(0.0, 1.0)
    return model
