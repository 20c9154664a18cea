"""Trackers through accelerate's tracking API: losses, metrics and ω per layer and source reach a tracker; TensorBoard
writes event files; an unknown or missing tracker is refused before any training."""
import csv
import importlib

import pytest
from accelerate.tracking import GeneralTracker

from scalearn_lite.config import get_preset

tr = importlib.import_module("scalearn_lite.transfer")
TINY = get_preset("tiny").with_(max_train=128, transfer_epochs=1)  # as test_transfer: same cached sources


class MemoryTracker(GeneralTracker):
    """An accelerate tracker that keeps what it is given (no package, no files)."""

    name = "memory"
    requires_logging_directory = False

    def __init__(self):
        super().__init__()
        self.config, self.logs, self.finished = None, [], False

    @property
    def tracker(self):
        return self

    def store_init_configuration(self, values):
        self.config = values

    def log(self, values, step=None, **kwargs):
        self.logs.append((step, dict(values)))

    def finish(self):
        self.finished = True


def test_a_tracker_gets_losses_metrics_and_omega_per_layer_and_source(data_dir, tmp_path):
    mem = MemoryTracker()
    res = tr.transfer("mrpc", ["rte"], "scalearn", TINY, data_dir=data_dir, out=tmp_path / "run", progress=False,
                      report_to=[mem])
    assert mem.finished and mem.config["lr"] == TINY.transfer_lr
    steps = [values for step, values in mem.logs if "train/loss" in values]
    assert len(steps) == res.metrics["steps"] and all(v["train/lr"] >= 0 for v in steps)
    epochs = [(step, values) for step, values in mem.logs if "validation_loss" in values]
    with open(res.path / "history.csv") as fh:
        history = list(csv.DictReader(fh))  # history.csv stays, with the same numbers
    assert len(epochs) == len(history)
    step, last = epochs[-1]
    assert step == int(history[-1]["steps"]) and last["validation_accuracy"] == pytest.approx(
        float(history[-1]["validation_accuracy"]))
    omega = {k for k in last if k.startswith("omega/")}
    assert omega == {f"omega/{l}/{s}" for l in range(2) for s in ("rte", "mrpc")}  # layer × source


def test_tensorboard_writes_event_files_and_a_missing_tracker_is_a_clear_error(data_dir, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="unknown tracker 'tensorbored'"):
        tr.transfer("mrpc", ["rte"], "scalearn", TINY, data_dir=data_dir, out=tmp_path / "x", report_to="tensorbored")
    from accelerate import tracking as acc_tracking

    monkeypatch.setattr(acc_tracking, "_available_trackers", [])  # as if tensorboard were not installed
    with pytest.raises(RuntimeError, match="`pip install tensorboard`"):
        tr.transfer("mrpc", ["rte"], "scalearn", TINY, data_dir=data_dir, out=tmp_path / "x", report_to="tensorboard")
    assert not (tmp_path / "x").exists()  # refused before any training
    monkeypatch.undo()
    pytest.importorskip("tensorboard")
    res = tr.transfer("mrpc", ["rte"], "scalearn_uniform_pp", TINY, data_dir=data_dir, out=tmp_path / "tb",
                      progress=False, report_to="tensorboard", logging_dir=str(tmp_path / "logs"))
    events = list((tmp_path / "logs").rglob("events.out.tfevents.*"))
    assert events and "scalearn_uniform_pp" in str(events[0]) and (res.path / "history.csv").is_file()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(events[0].parent)).Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"train/loss", "validation_loss", "omega/0/mrpc", "omega/1/rte"} <= tags
