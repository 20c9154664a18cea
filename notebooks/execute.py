"""Run one notebook top to bottom in a chosen mode and time it (how the run times in the headers are measured).

    python notebooks/execute.py 04_reading_the_heatmaps --mode cpu --executed /tmp/04.ipynb \
        --figure "viz.variant_heatmaps(runs)=docs/omega_heatmaps_cpu.png"

--figure CODE=PATH writes the first PNG drawn by the code cell that contains CODE (e.g. a heatmap for docs/).
The committed notebooks stay clean: the executed copy goes to --executed (default: a temporary file).
"""
import argparse
import base64
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("notebook", help="name or path, e.g. 04_reading_the_heatmaps")
    p.add_argument("--mode", choices=["fast", "cpu", "full"], default="cpu", help="SCALEARN_MODE for the kernel")
    p.add_argument("--timeout", type=int, default=3600, help="seconds per cell (default 3600)")
    p.add_argument("--executed", default=None, help="where to write the executed copy")
    p.add_argument("--figure", action="append", default=[], metavar="CODE=PATH",
                   help="save the first PNG of the cell whose source contains CODE to PATH (repeatable)")
    args = p.parse_args(argv)

    path = Path(args.notebook)
    if not path.suffix:
        path = HERE / f"{args.notebook}.ipynb"
    if not path.is_file():
        p.error(f"no notebook at {path}; names: {', '.join(q.stem for q in sorted(HERE.glob('[0-9]*.ipynb')))}")
    os.environ["SCALEARN_MODE"] = args.mode
    # the kernel imports this checkout's package, whatever is installed in the environment
    os.environ["PYTHONPATH"] = os.pathsep.join([str(HERE.parent), *filter(None, [os.environ.get("PYTHONPATH")])])
    if args.mode != "fast":
        os.environ.pop("SCALEARN_FAST", None)
        os.environ.pop("CI", None)
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=args.timeout, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}).execute()
    seconds = time.perf_counter() - start
    out = Path(args.executed) if args.executed else Path(tempfile.mkdtemp()) / path.name
    nbformat.write(nb, out)
    for spec in args.figure:
        code, _, target = spec.partition("=")
        png = next((o["data"]["image/png"] for c in nb.cells if c.cell_type == "code" and code in c.source
                    for o in c.get("outputs", []) if "image/png" in o.get("data", {})), None)
        if png is None:
            print(f"no PNG output in a cell containing {code!r}", file=sys.stderr)
            return 1
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        Path(target).write_bytes(base64.b64decode(png))
        print(f"figure → {target}")
    print(f"{path.stem}: {args.mode} mode, {seconds:.0f} s wall time; executed copy {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
