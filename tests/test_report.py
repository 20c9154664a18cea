"""Results tables (scalearn_lite/report.py): mean and sample std over seeds, the paper's table layout, the comparison
with the paper's averages."""
import pandas as pd
import pytest

from scalearn_lite.report import paper_comparison, paper_table, summarize


def test_summary_is_mean_and_sample_std_over_seeds_and_the_table_has_the_papers_layout():
    runs = pd.DataFrame({"method": ["scalearn"] * 3 + ["adapter"] * 3, "target": ["rte", "rte", "mrpc"] * 2,
                         "seed": [0, 1, 0] * 2, "metric": ["accuracy"] * 6, "value": [50.0, 54.0, 70.0, 60, 62, 80],
                         "transfer_params": [10, 10, 10, 99, 99, 99]})
    summary = summarize(runs).set_index(["method", "target"])
    assert summary.loc[("scalearn", "rte"), "mean"] == 52.0
    assert summary.loc[("scalearn", "rte"), "std"] == pytest.approx(2 ** 0.5 * 2)  # ddof=1: sqrt(8)
    assert summary.loc[("scalearn", "mrpc"), "std"] == 0.0 and summary.loc[("scalearn", "rte"), "seeds"] == 2
    table = paper_table(summary.reset_index(), ["rte", "mrpc"], ["scalearn", "adapter"]).splitlines()
    assert table[0] == "| method | rte (accuracy) | mrpc (accuracy) | Avg | transfer params |"
    assert table[2] == "| ScaLearn | 52.00 ± 2.83 | 70.00 ± 0.00 | 61.00 | 10 |"
    assert table[3] == "| Adapter | 61.00 ± 1.41 | 80.00 ± 0.00 | 70.50 | 99 |"
    compare = paper_comparison(summary.reset_index(), ["rte", "mrpc"], ["scalearn", "adapter"], "glue")
    assert "| ScaLearn | 61.00 | 85.36 |" in compare and "| Adapter | 70.50 | 83.83 |" in compare
