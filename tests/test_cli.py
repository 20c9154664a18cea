"""The command line: every command explains itself; failures exit non-zero with a one-line reason."""
import argparse
import importlib
import json
import re
import sys

import pytest

from scalearn_lite import runs as runs_mod
from scalearn_lite.cli import build_parser, main
from standins import cli

sources = importlib.import_module("scalearn_lite.sources")
tr = importlib.import_module("scalearn_lite.transfer")

COMMANDS = ["tasks", "train-source", "zoo", "transfer", "params", "bench", "demo", "lr-grid", "reproduce"]


def help_of(argv, capsys) -> str:
    """`scalearn-lite <argv> --help` in this process (argparse prints, then exits 0)."""
    with pytest.raises(SystemExit) as stop:
        main([*argv, "--help"])
    assert stop.value.code == 0
    return capsys.readouterr().out


def subcommands() -> dict:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices


def test_the_top_level_help_lists_every_command_with_what_it_does(capsys):
    assert sorted(subcommands()) == sorted(COMMANDS)  # a new command gets its --help test below
    out = help_of([], capsys)
    for command in COMMANDS:
        assert re.search(rf"^\s+{re.escape(command)}\s+\w", out, re.M), f"{command} has no line of help"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    out = help_of([command], capsys)
    assert out.startswith("usage: scalearn-lite " + command)
    for action in subcommands()[command]._actions:  # every argument and option says what it is for
        name = "/".join(action.option_strings) or action.dest
        assert action.help and action.help != argparse.SUPPRESS, f"{command} {name} has no help text"


def test_tasks_json_lists_every_task_with_official_sizes(data_dir):
    res = cli("tasks", "--data-dir", str(data_dir), "--json")
    assert res.returncode == 0, res.stderr
    rows = {r["name"]: r for r in json.loads(res.stdout)}
    assert len(rows) == 21
    assert rows["rte"]["splits"] == {"train": 2241, "validation": 249, "test": 277}  # 2,490 = 2,241 + 249
    assert rows["cb"]["splits"]["test"] == 56 and rows["qnli"]["splits"]["test"] == 5463
    text = cli("tasks", "--data-dir", str(data_dir))
    assert text.returncode == 0 and "superglue_rte" in text.stdout


def test_unknown_task_lists_valid_names(data_dir):
    res = cli("train-source", "nosuchtask", "--preset", "tiny", "--data-dir", str(data_dir))
    assert res.returncode == 2
    assert "unknown task" in res.stderr and "rte" in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_missing_local_data_names_the_path(tmp_path):
    res = cli("train-source", "rte", "--preset", "tiny", "--data-dir", str(tmp_path))
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert str(tmp_path) in res.stderr


def test_unknown_method_and_preset_fail_cleanly(data_dir):
    res = cli("transfer", "rte", "--sources", "cola", "--method", "magic", "--data-dir", str(data_dir))
    assert res.returncode == 2 and "unknown method 'magic'" in res.stderr
    res = cli("train-source", "rte", "--preset", "huge", "--data-dir", str(data_dir))
    assert res.returncode == 2 and "unknown preset 'huge'" in res.stderr


# ---------------------------------------------------------------- argument checks before any work
@pytest.mark.parametrize("argv, option", [
    (["demo", "--seeds", "0"], "--seeds"), (["demo", "--seeds", "-1"], "--seeds"),
    (["reproduce", "--benchmark", "glue", "--seeds", "0"], "--seeds"), (["demo", "--jobs", "0"], "--jobs"),
    (["transfer", "rte", "--seed", "-1"], "--seed"), (["train-source", "rte", "--seed", "-1"], "--seed"),
    (["transfer", "rte", "--k-shot", "0"], "--k-shot"), (["params", "--sources", "0"], "--sources"),
    (["params", "--hidden-size", "8", "--num-layers", "-1"], "--num-layers"),
    (["bench", "--repeats", "0"], "--repeats"),
    (["transfer", "rte", "--seed", "x"], "--seed")])
def test_bad_numbers_are_refused_by_the_parser_naming_the_option(argv, option, capsys, monkeypatch):
    import scalearn_lite.sources.training as sources  # where train_source calls fit_source

    def boom(*a, **k):
        raise AssertionError("trained")

    monkeypatch.setattr(sources, "fit_source", boom)
    with pytest.raises(SystemExit) as stop:
        main(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and f"argument {option}: must be an integer" in err, err
    assert len(err.strip().splitlines()) == 1 and "--help)" in err, err  # one line: no usage block before it


def test_a_terminal_that_cannot_print_arrows_does_not_turn_a_saved_run_into_an_error(data_dir, monkeypatch, tmp_path):
    import io

    from scalearn_lite.config import get_preset
    from scalearn_lite.sources import train_source

    train_source("rte", get_preset("tiny"), data_dir=data_dir, seed=0, progress=False)  # cached: nothing to train
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="latin-1")
    monkeypatch.setattr(sys, "stdout", out)
    code = main(["train-source", "rte", "--preset", "tiny", "--data-dir", str(data_dir), "--quiet"])
    out.flush()
    assert code == 0 and b"\\u2192" in raw.getvalue()  # "→" escaped, not an error


# ------------------------------------------------------------------------------ what a command prints
def test_train_source_cli_reports_a_dev_only_source_without_a_test_split(monkeypatch, capsys, tmp_path):
    metrics = {"task": "qnli", "base": "b", "metric": "accuracy", "test": {}, "validation": {"accuracy": 0.7},
               "steps": 3, "seconds": 1.0}
    monkeypatch.setattr(sources, "train_source", lambda *a, **k: sources.SourceResult(tmp_path, metrics, False))
    assert main(["train-source", "qnli", "--preset", "tiny"]) == 0
    assert "no test split (a dev-only task" in capsys.readouterr().out


def test_transfer_cli_says_reused(monkeypatch, capsys, tmp_path):
    metrics = {"method": "scalearn", "target": "rte", "sources": ["cb", "rte"], "metric": "accuracy",
               "test_metric": 0.5, "validation_metric": 0.5, "transfer_params": 10, "wall_seconds": 123.0,
               "steps": 4, "step_budget": 4, "rows": {"train": 32, "validation": 16}}
    monkeypatch.setattr(tr, "transfer", lambda *a, **k: runs_mod.RunResult(tmp_path, metrics, reused=True))
    assert main(["transfer", "rte", "--sources", "cb", "--preset", "tiny"]) == 0
    assert "reused: finished earlier in 123 s, nothing trained now" in capsys.readouterr().out


def test_tasks_with_a_data_dir_that_does_not_exist_is_an_error(tmp_path, capsys):
    assert main(["tasks", "--data-dir", str(tmp_path / "nope")]) == 2
    assert f"data dir {tmp_path / 'nope'} (from --data-dir" in capsys.readouterr().err
