"""The parameter report: transfer parameters per method, counted from instantiated modules."""
import json

from scalearn_lite.cli import main


def test_params_cli_reads_the_paper_numbers(capsys):
    args = ["params", "--hidden-size", "768", "--num-layers", "12", "--sources", "8"]
    assert main(args + ["--json"]) == 0  # in-process: the same code as `scalearn-lite params`, no interpreter start
    counts = json.loads(capsys.readouterr().out)
    assert counts["scalearn"] == 73_728 and counts["scalearn_uniform"] == 96
    assert counts["scalearn_pp"] == 6_144 and counts["scalearn_uniform_pp"] == 8
    assert counts["adapterfusion"] == 21_252_096 and counts["adapter"] == 894_528
    assert main(args) == 0
    table = capsys.readouterr().out
    assert "73,728" in table and "0.3469%" in table
