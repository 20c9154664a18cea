"""scalearn_lite: ScaLearn (learning to scale frozen source adapters for task transfer), exact, fast, teachable.

One import line for notebooks:  `import scalearn_lite as sl`.
"""
from .config import PRESETS, VARIANTS, Preset, ScaLearnConfig, get_preset
from .data import load_raw, load_splits, task_table
from .models import load_base
from .params import count_parameters
from .scaling import AdapterWeights, Omega, ScaLearn, SourceBank, attach
from .sources import train_source
from .tasks import TASKS, get_task, list_tasks
from .train import FitConfig, evaluate, fit
from .methods import BASELINES, METHODS, OMEGA_METHODS
from .runs import load_run
from .transfer import transfer

__version__ = "0.1.0"
__all__ = [
    "PRESETS", "VARIANTS", "Preset", "ScaLearnConfig", "get_preset", "load_raw", "load_splits", "task_table",
    "load_base", "count_parameters", "AdapterWeights", "Omega", "ScaLearn", "SourceBank", "attach", "train_source",
    "TASKS", "get_task", "list_tasks", "FitConfig", "evaluate", "fit", "BASELINES", "METHODS", "OMEGA_METHODS",
    "load_run", "transfer",
]
