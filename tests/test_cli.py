"""The command line: every command explains itself; failures exit non-zero with a one-line reason."""
import json
import subprocess
import sys

import pytest

COMMANDS = ["tasks", "train-source", "transfer", "params", "bench", "demo", "reproduce"]


def cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "scalearn_lite", *args], capture_output=True, text=True, env=env)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    res = cli(command, "--help")
    assert res.returncode == 0 and "usage: scalearn-lite " + command in res.stdout
    assert len(res.stdout.splitlines()) > 4


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
