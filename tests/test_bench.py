"""`scalearn-lite bench` end to end in its smallest configuration: structure of the JSON, not speed."""
import json
import math

from scalearn_lite import bench, bench_report
from scalearn_lite.cli import main

RATIOS = ["scalearn_vs_adapter", "scalearn_vs_floor", "growth_s1_to_s32", "fusion_vs_scalearn", "loop_vs_batched",
          "memory_scalearn_vs_adapter"]
CONFIGS = ["floor", "adapter", "scalearn-S1", "scalearn-S2", "loop-S2", "fusion-S2", "bf16-S2", "bf16-cast-S2"]


def positive(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def test_bench_writes_every_figure(tmp_path, capsys):
    out = tmp_path / "bench.json"
    rc = main(["bench", "--preset", "tiny", "--batch-size", "2", "--seq-len", "16", "--repeats", "1",
               "--warmup", "1", "--sources", "1,2", "--json", str(out)])
    assert rc == 0
    res = json.loads(out.read_text())
    printed = capsys.readouterr().out
    assert "ScaLearn S=2, loop" in printed and "AdapterFusion S=2" in printed and "fusion_vs_scalearn" in printed

    for key in RATIOS:
        assert positive(res["ratios"][key]), key
    assert all(positive(v) for v in res["ratios"].values())
    assert set(res["targets"]) == set(bench_report.TARGETS)
    assert "scalearn_vs_adapter" in res["ratios_min"] and all(positive(v) for v in res["ratios_min"].values())
    assert all(isinstance(t["met"], bool) for t in res["targets"].values())

    assert list(res["train"]) == CONFIGS
    for name, r in res["train"].items():
        assert positive(r["median_ms"]) and len(r["times_ms"]) == 1, name
        assert positive(r["peak_mb"]) and positive(r["gflop"]) and r["trainable_params"] > 0, name
    assert res["train"]["scalearn-S2"]["gflop"] > res["train"]["scalearn-S1"]["gflop"]  # a wider bank, more work
    # what trains: the head alone (floor), ω + head (ScaLearn), adapter + head, fusion + head
    head = res["train"]["floor"]["trainable_params"]
    d, L = res["setup"]["hidden_size"], res["setup"]["num_layers"]
    assert res["train"]["scalearn-S2"]["trainable_params"] == head + L * 2 * d
    assert res["train"]["loop-S2"]["trainable_params"] == res["train"]["scalearn-S2"]["trainable_params"]
    assert res["train"]["bf16-S2"]["trainable_params"] == res["train"]["scalearn-S2"]["trainable_params"]
    assert "ScaLearn S=2, CPU bf16" in printed and positive(res["ratios"]["cpu_bf16_vs_fp32"])
    cast, bf16 = res["train"]["bf16-cast-S2"], res["train"]["bf16-S2"]  # the same step, weights cast once
    assert cast["trainable_params"] == bf16["trainable_params"] and cast["gflop"] == bf16["gflop"]
    assert "ScaLearn S=2, CPU bf16, cast once" in printed and positive(res["ratios"]["cpu_bf16_frozen_cast_vs_autocast"])
    assert res["train"]["fusion-S2"]["trainable_params"] > res["train"]["adapter"]["trainable_params"] > head

    assert set(res["inference"]) == {"adapter", "scalearn-S2"}
    assert all(positive(r["examples_per_s"]) for r in res["inference"].values())
    assert set(res["adapter_part"]) == {"S1", "S2"}
    assert all(positive(r[m]["median_ms"]) for r in res["adapter_part"].values() for m in ("batched", "loop"))

    s, m = res["setup"], res["machine"]
    assert (s["batch_size"], s["seq_len"], s["num_layers"], s["compare_sources"]) == (2, 16, 2, 2)
    assert s["sources"] == [1, 2] and s["growth_sources"] == [1, 2]
    assert m["device"] == "cpu" and m["cores"] >= 1 and m["torch"] and m["cpu"]
    assert positive(res["wall_seconds"])


def test_bench_rejects_bad_arguments(capsys):
    assert main(["bench", "--sources", "0,2"]) == 2
    assert main(["bench", "--sources", "1,2", "--compare-sources", "8"]) == 2
    assert "--compare-sources 8" in capsys.readouterr().err
