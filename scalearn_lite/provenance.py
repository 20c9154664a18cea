"""Run provenance shared by every table and benchmark: the git revision and the machine, in one line each."""
from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path


def git_revision() -> str:
    """The short git revision of this checkout, or "unknown"."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, timeout=5).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo; else what platform knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def machine() -> str:
    """CPU model and cores (or the GPU) in one line."""
    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    return f"{cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__}"
