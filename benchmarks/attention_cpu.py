"""Side by side on CPU: one transfer run with transformers' SDPA attention against eager attention.

    python benchmarks/attention_cpu.py [--repeats 2] [--threads 1]

The same run (RTE, the demo's five sources from the cpu zoo, ScaLearn, seed 1) alternately with
`Preset.attention="sdpa"` and `"eager"`; prints each run's wall and training seconds and the test score, then the
median ratio. Needs ../shared/data (or SCALEARN_DATA_DIR), the zoo in the cache (`make demo` trains it) and RTE's own
adapter under the cpu preset (`scalearn-lite train-source rte --role target --preset cpu --data-dir ../shared/data`;
the demo preset trains its own, with 3 epochs, and no longer for RTE).
Time it only on a quiet machine.
"""
import argparse
import statistics
import tempfile
import time

import torch

from scalearn_lite.config import get_preset
from scalearn_lite.sources import source_dir
from scalearn_lite.transfer import transfer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cpu = get_preset("cpu")
    names = ("sst2", "stsb", "qnli", "mrpc")
    sources = [str(source_dir(n, cpu)) for n in names] + [str(source_dir("rte", cpu, role="target"))]
    seconds = {"sdpa": [], "eager": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for kernel in ("sdpa", "eager"):
                start = time.perf_counter()
                res = transfer("rte", sources, "scalearn", cpu.with_(attention=kernel), seed=1, data_dir=args.data_dir,
                               out=f"{tmp}/{kernel}{r}", include_target=False, progress=False, force=True)
                wall = time.perf_counter() - start
                seconds[kernel].append(res.metrics["train_seconds"])
                print(f"{kernel:<5} wall {wall:5.1f} s  train {res.metrics['train_seconds']:5.1f} s  "
                      f"test {100 * res.metrics['test_metric']:.2f}")
    ratio = statistics.median(seconds["sdpa"]) / statistics.median(seconds["eager"])
    print(f"median training time sdpa / eager: {ratio:.2f}")


if __name__ == "__main__":
    main()
