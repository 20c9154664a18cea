"""Side by side on CPU bf16: transfer runs with the frozen Linear weights cast once per fit / evaluation (what
`train.fit` and `train.predict` do) against bf16 autocast casting them at every call (what they did before).

    python benchmarks/frozen_cast_cpu.py [--repeats 2] [--threads 1] [--targets stsb,rte]

On a CPU with native bf16 (where the cpu preset's "auto" is bf16), per target: the cpu preset's ScaLearn run of the
demo's five sources (from the zoo, seed 0), alternately with and without the cast; prints each run's fit + test
seconds (metrics.json `wall_seconds`) and test score (the same to the last digit both ways, or the script fails),
then the median ratio. Needs ../shared/data (or SCALEARN_DATA_DIR); the zoo (`make demo` trains it) and the targets'
own adapters under the cpu preset (6 epochs: not the demo preset's, so trained on first use, before any timing) come
from the cache. Time it only on a quiet machine.
"""
import argparse
import statistics
import tempfile
from contextlib import nullcontext

import torch

from scalearn_lite import device, train
from scalearn_lite.config import get_preset
from scalearn_lite.experiments import DEMO_SOURCES
from scalearn_lite.transfer import transfer

CAST = train.frozen_linears_cast  # the name fit() calls: swapped below for the autocast-only arm


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--targets", default="stsb,rte")
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cpu = get_preset("cpu")  # the zoo's cache key is the demo's; cpu_precision "auto"
    if not device.cpu_bf16("cpu", cpu.cpu_precision):
        raise SystemExit("this CPU has no native bf16: the cpu preset computes in fp32 here, where nothing is cast")
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        for target in args.targets.split(","):
            seconds, scores = {"cast once": [], "autocast": []}, set()
            for r in range(args.repeats):
                for mode in seconds:
                    train.frozen_linears_cast = CAST if mode == "cast once" else (lambda *a: nullcontext())
                    res = transfer(target, list(DEMO_SOURCES), "scalearn", cpu, seed=0, data_dir=args.data_dir,
                                   out=f"{tmp}/{target}-{mode}{r}", progress=False, force=True)
                    seconds[mode].append(res.metrics["wall_seconds"])
                    scores.add(res.metrics["test_metric"])
                    print(f"{target:<5} {mode:<9} fit + test {res.metrics['wall_seconds']:5.1f} s  "
                          f"test {100 * res.metrics['test_metric']:.4f}", flush=True)
            train.frozen_linears_cast = CAST
            if len(scores) != 1:
                raise SystemExit(f"{target}: the two ways gave different test scores {sorted(scores)}")
            ratios.append(statistics.median(seconds["cast once"]) / statistics.median(seconds["autocast"]))
            print(f"{target}: median fit + test time, cast once / autocast: {ratios[-1]:.3f}")


if __name__ == "__main__":
    main()
