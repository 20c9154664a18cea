"""The main job end to end on real data (tiny preset): `demo` and `reproduce` tables, files, plots, resuming."""
import pandas as pd
import pytest

from scalearn_lite.experiments import in_benchmark, source_notes
from standins import cli, labels_of


def test_demo_writes_the_table_csv_and_plots_and_reproduce_reuses_its_runs(data_dir, tmp_path):
    out = tmp_path / "demo"
    args = ["--preset", "tiny", "--data-dir", str(data_dir), "--targets", "mrpc", "--sources", "rte",
            "--seeds", "2", "--out", str(out), "--quiet"]
    res = cli("demo", *args, "--methods", "scalearn,head_only,adapter")
    assert res.returncode == 0, res.stderr
    csv = pd.read_csv(out / "results.csv")
    assert list(csv.columns) == ["method", "target", "metric", "mean", "std", "seeds", "transfer_params"]
    assert sorted(csv.method) == ["adapter", "head_only", "scalearn"] and set(csv.seeds) == {2}
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 6  # 3 methods × 1 target × 2 seeds
    for method, group in runs.groupby("method"):
        row = csv[csv.method == method].iloc[0]
        assert row["mean"] == pytest.approx(group.value.mean(), abs=1e-3)  # the table is computed from the runs
    assert csv.set_index("method").at["scalearn", "transfer_params"] == 2 * 2 * 384  # L·S·d: rte + mrpc's own
    md = (out / "results.md").read_text()
    assert "| ScaLearn |" in md and "mrpc (accuracy)" in md and "wall time" in md and "6 new runs" in md
    floor = next(line for line in md.splitlines() if line.startswith("| *best constant prediction* |"))
    labels = labels_of(data_dir, "mrpc")
    majority = 100 * max(labels.count(c) for c in (0, 1)) / len(labels)
    assert f"| {majority:.2f} |" in floor  # MRPC's majority class on the test rows the runs are scored on
    assert (out / "omega_heatmaps_mrpc.png").stat().st_size > 1000 and (out / "efficiency.png").is_file()
    assert (out / "contributions_mrpc.png").stat().st_size > 1000 and (out / "omega_training_mrpc.png").is_file()
    assert (out / "omega_movement_mrpc.png").stat().st_size > 1000  # signed mean change and mean |ω − 2/S|
    assert (out / "omega_movement_training_mrpc.png").is_file()
    omega = pd.read_csv(out / "omega.csv")  # every ScaLearn-variant run, per layer × source
    assert list(omega.columns) == ["target", "method", "seed", "layer", "source", "mean", "min", "max",
                                   "mean_abs_change"]
    assert len(omega) == 2 * 2 * 2 and set(omega.method) == {"scalearn"}  # seeds × layers × (rte, mrpc's own)
    assert (omega["min"] <= omega["mean"]).all() and (omega["mean"] <= omega["max"]).all()
    assert "How far ω moved" in md and "bound lr·Σ(schedule)" in md
    assert "zoo 0." in md or "zoo " in md  # the header times the zoo apart from the runs
    zoo = (out / "zoo.md").read_text()
    assert "| rte | accuracy |" in zoo  # the demo's source zoo and its quality
    assert "ScaLearn" in res.stdout  # the table is printed

    stamps = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/*/*/metrics.json")}
    again = cli("reproduce", "--benchmark", "glue", *args, "--methods", "scalearn,head_only,adapter")
    assert again.returncode == 0, again.stderr
    assert {p: p.stat().st_mtime_ns for p in out.glob("runs/*/*/*/metrics.json")} == stamps  # nothing retrained
    md = (out / "results.md").read_text()
    assert "paper (avg)" in md and "| ScaLearn |" in md and "85.36" in md and "0 new runs, 6 finished runs reused" in md


def test_reproduce_refuses_a_run_folder_from_other_settings(data_dir, tmp_path):
    out = tmp_path / "r"
    base = ["--benchmark", "glue", "--preset", "tiny", "--data-dir", str(data_dir), "--targets", "mrpc",
            "--methods", "scalearn_uniform_pp", "--seeds", "1", "--out", str(out), "--quiet"]
    assert cli("reproduce", *base, "--sources", "rte").returncode == 0
    assert cli("reproduce", *base, "--sources", "sst2").returncode == 0  # another source set: a folder of its own
    assert len(list((out / "runs").rglob("metrics.json"))) == 2
    res = cli("reproduce", *base, "--sources", "rte", "--cpu-precision", "bf16")  # same folder, other settings
    assert res.returncode != 0
    assert "other settings" in res.stderr and "cpu_precision" in res.stderr and "Traceback" not in res.stderr


def test_reproduce_reads_target_names_within_the_benchmark():
    """`--benchmark superglue --targets rte` is SuperGLUE's RTE, not GLUE's; a task of another benchmark is refused."""
    assert in_benchmark(["rte", "cb", "wsc.fixed"], "superglue", strict=True) == ["superglue_rte", "cb", "wsc"]
    assert in_benchmark(["rte", "cola"], "glue", strict=True) == ["rte", "cola"]
    assert in_benchmark(["rte", "sst2"], "superglue", strict=False) == ["superglue_rte", "sst2"]  # sources may cross
    hub = "AdapterHub/roberta-base-rte_pfeiffer"  # sources may also be adapter folders or hub ids
    assert in_benchmark([hub, "cb"], "superglue", strict=False) == [hub, "cb"]
    with pytest.raises(ValueError, match="unknown task"):
        in_benchmark([hub], "superglue", strict=True)
    with pytest.raises(ValueError, match="'mrpc' is a glue task, not a superglue one"):
        in_benchmark(["mrpc"], "superglue", strict=True)


def test_tables_mark_dev_only_sources(data_dir):
    notes = source_notes(["qnli", "rte"], data_dir)
    assert notes.startswith("qnli (dev only here") and notes.endswith(", rte")
