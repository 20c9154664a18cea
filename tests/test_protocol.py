"""The authors' protocol around the method: three budgets kept apart, the few-shot step budget, the target's own
adapter from seed 0, and the source zoo (tiny preset, real data)."""
import dataclasses
import importlib
import json
import re

import pandas as pd
import pytest

from scalearn_lite import zoo
from scalearn_lite.config import PRESETS, get_preset
from scalearn_lite.sources import source_dir, stage1_fit_settings, train_source
from scalearn_lite.data import load_task_data
from scalearn_lite.tasks import get_task

tr = importlib.import_module("scalearn_lite.transfer")
TINY = dataclasses.replace(get_preset("tiny"), source_max_train=96, max_train=48, few_shot_patience=None)


def test_sources_and_targets_are_trained_with_their_own_budgets(data_dir, tmp_path):
    src = train_source("rte", TINY, data_dir=data_dir, out=tmp_path / "src", progress=False)
    own = train_source("rte", TINY, data_dir=data_dir, out=tmp_path / "own", progress=False, role="target")
    assert src.metrics["rows"]["train"] == 96 and own.metrics["rows"]["train"] == 48
    assert src.metrics["role"] == "source" and own.metrics["role"] == "target"
    assert source_dir("rte", TINY) != source_dir("rte", TINY, role="target")  # two cache folders, no thrash
    # two presets with different target budgets (cpu: 6 epochs, demo: 3) keep two own adapters, one zoo
    cpu, demo = PRESETS["cpu"], PRESETS["demo"]
    assert source_dir("rte", cpu, role="target") != source_dir("rte", demo, role="target")
    assert source_dir("rte", cpu, k_shot=8, role="target") != source_dir("rte", TINY, k_shot=8, role="target")
    assert source_dir("rte", cpu) == source_dir("rte", demo)
    assert source_dir("rte", demo, role="target") == source_dir("rte", demo.with_(transfer_lr=1.0), role="target")
    # the paper preset gives the target's own adapter the source budget: then it *is* the zoo adapter
    paper = PRESETS["paper"]
    assert source_dir("rte", paper, role="target") == source_dir("rte", paper)
    assert stage1_fit_settings(paper, "target", None) == stage1_fit_settings(paper, "source", None)


def test_a_k_shot_run_trains_for_the_step_budget_on_the_same_rows_for_every_seed(data_dir, tmp_path):
    runs = [tr.transfer("cb", ["rte"], "scalearn", TINY, seed=s, k_shot=4, data_dir=data_dir,
                        out=tmp_path / f"s{s}", progress=False) for s in (0, 1)]
    m = runs[0].metrics
    # k=4 rows, batch 16: one step per epoch; epochs x ceil(k/batch) would be 2 steps, the budget is 12
    assert m["steps"] == m["step_budget"] == TINY.few_shot_steps == 12
    assert m["rows"]["train"] == 4 and m["rows"]["validation"] > 4  # validation from the held-out split
    rows = [load_task_data(get_task("cb"), TINY, data_dir, k_shot=4, seed=s)["train"] for s in (0, 1)]
    assert rows[0] == rows[1]  # the first k of the seed-42 shuffled train split, whatever the run seed
    # the target's own adapter inside every stage-2 seed is seed 0's (the authors' protocol)
    refs = [json.loads((r.path / "config.json").read_text())["source_refs"][-1] for r in runs]
    assert refs[0] == refs[1] and re.search(r"/cb-k4-[0-9a-f]{8}-d[0-9a-f]{8}/seed0$", refs[0])


def test_own_adapter_per_seed_is_an_option(data_dir, tmp_path):
    per_seed = dataclasses.replace(TINY, own_adapter_seed="per_seed", transfer_epochs=1)
    res = tr.transfer("mrpc", ["rte"], "scalearn_uniform_pp", per_seed, seed=1, data_dir=data_dir,
                      out=tmp_path / "r", progress=False)
    assert json.loads((res.path / "config.json").read_text())["source_refs"][-1].endswith(
        f"/{source_dir('mrpc', per_seed, role='target', data_dir=data_dir).parent.name}/seed1")
    with pytest.raises(ValueError, match="own_adapter_seed"):
        dataclasses.replace(TINY, own_adapter_seed="sometimes")


def test_stage2_selection_and_patience_follow_the_preset():
    paper = PRESETS["paper"]
    sl = tr.stage2_fit_settings(paper, "scalearn")
    assert (sl["select_by"], sl["patience"], sl["epochs"], sl["lr"]) == ("loss", None, 30, 6e-3)
    fusion, soup = tr.stage2_fit_settings(paper, "adapterfusion"), tr.stage2_fit_settings(paper, "adaptersoup")
    assert (fusion["patience"], fusion["lr"]) == (5, 5e-5) and (soup["patience"], soup["lr"]) == (5, 3e-4)
    few = tr.stage2_fit_settings(paper, "scalearn", k_shot=16)
    assert (few["epochs"], few["max_steps"], few["patience"], few["select_by"]) == (None, 1000, 20, "metric")
    assert paper.length_for("multirc") == 324 and paper.length_for("rte") == 128


def test_the_zoo_trains_once_and_reports_scores_against_the_constant(data_dir, tmp_path):
    first = zoo.train_zoo(TINY, ["cb", "qnli"], data_dir=data_dir, progress=False)
    assert list(first.task) == ["cb", "qnli"] and not first.cached.any()
    again = zoo.train_zoo(TINY, ["cb", "qnli"], data_dir=data_dir, progress=False)
    assert again.cached.all() and (again.validation == first.validation).all()  # reused, nothing retrained
    cb, qnli = first.iloc[0], first.iloc[1]
    labels = [r["label"] for r in load_task_data(get_task("cb"), TINY, data_dir, as_source=True)["test"]]
    assert cb.test_constant == pytest.approx(100 * max(labels.count(c) for c in set(labels)) / len(labels))
    assert qnli.dev_only and pd.isna(qnli.test) and qnli.train_rows == 96
    table = zoo.zoo_table(first)
    assert "| qnli (dev only: no test) |" in table and f"| {cb.test_constant:.2f} |" in table
    zoo.write_zoo(tmp_path, first, "# zoo")
    assert (tmp_path / "zoo.md").read_text().startswith("# zoo") and (tmp_path / "zoo.csv").is_file()
