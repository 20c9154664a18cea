"""AdapterHub's published roberta-base seq_bn adapters: the one table of hub ids, and their download.

Two sets, both the architecture ScaLearn's sources need (seq_bn after the FFN, reduction factor 16, ReLU):

    pfeiffer  the AdapterFusion paper's adapters, `AdapterHub/roberta-base-<name>_pfeiffer` (AdapterHub's own
              names: `sst`, `sts_b`, `multinli`, ...); some come without a head
    pf        one recipe for many tasks, with heads, SuperGLUE included: `AdapterHub/roberta-base-pf-<task>`

Both were selected by their authors on the official dev split, which this package uses as the *test*
set: scores with hub sources are optimistic, and every table built from them says so (HUB_CAVEAT).
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

# task name (ours) -> the name inside AdapterHub's id. Only ids we have seen referenced publicly are listed;
# a task missing here has no adapter in that set (train it with stage 1).
HUB_SETS: Dict[str, Dict[str, str]] = {
    "pfeiffer": {"cola": "cola", "sst2": "sst", "mrpc": "mrpc", "qqp": "qqp", "stsb": "sts_b", "mnli": "multinli",
                 "qnli": "qnli", "rte": "rte", "superglue_rte": "rte", "boolq": "boolq", "cb": "cb"},
    "pf": {"cola": "cola", "sst2": "sst2", "mrpc": "mrpc", "qqp": "qqp", "stsb": "stsb", "mnli": "mnli", "qnli": "qnli",
           "rte": "rte", "superglue_rte": "rte", "boolq": "boolq", "copa": "copa", "wic": "wic", "multirc": "multirc"},
}
DEFAULT_SET = "pfeiffer"
# `--sources` values that mean "AdapterHub's adapters for every task" (reproduce), per set.
SOURCE_SPECS = {"hub": "pfeiffer", "hub-pfeiffer": "pfeiffer", "hub-pf": "pf"}
HUB_CAVEAT = ("hub adapters were selected by their authors on the official dev split, which is our test split: "
              "scores with hub sources are optimistic")


def check_set(hub_set: str) -> str:
    """The set name, or a ValueError listing the valid ones."""
    if hub_set not in HUB_SETS:
        raise ValueError(f"unknown AdapterHub set {hub_set!r}; choose one of {', '.join(HUB_SETS)}")
    return hub_set


def hub_adapter_id(task: str, hub_set: str = DEFAULT_SET) -> str:
    """AdapterHub's roberta-base seq_bn adapter id for one of our task names, in the given set."""
    names = HUB_SETS[check_set(hub_set)]
    if task not in names:
        raise ValueError(f"AdapterHub's {hub_set!r} set has no roberta-base adapter for {task!r} in our table "
                         f"({', '.join(names)}); train it with stage 1 instead")
    if hub_set == "pf":
        return f"AdapterHub/roberta-base-pf-{names[task]}"
    return f"AdapterHub/roberta-base-{names[task]}_pfeiffer"


def hub_adapter_ids(hub_set: str = DEFAULT_SET) -> Dict[str, str]:
    """{task: hub id} for every task the set covers."""
    return {task: hub_adapter_id(task, hub_set) for task in HUB_SETS[check_set(hub_set)]}


def hub_refs(tasks: Sequence[str], hub_set: Union[str, bool, None] = DEFAULT_SET) -> List[str]:
    """Task names → hub ids where the set has one (other names are kept); hub_set False/None keeps all names."""
    if not hub_set:
        return list(tasks)
    hub_set = DEFAULT_SET if hub_set is True else hub_set
    ids = hub_adapter_ids(hub_set)
    return [ids.get(t, t) for t in tasks]


_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*")  # owner/name, as the hub allows


def is_hub_id(ref: str) -> bool:
    """True for an `owner/name` hub id (not an existing folder, not a path with spaces, dots first or slashes)."""
    return bool(_HUB_ID.fullmatch(ref)) and not Path(ref).exists()


# the config files of an adapter folder that adapters reads (each checked by models.check_config_file)
ADAPTER_CONFIGS = ("adapter_config.json", "head_config.json", "adapter_fusion_config.json", "config.json")


def trusted_adapter_ids() -> frozenset:
    """Every hub id of our table (both sets): the adapters that load without an opt-in."""
    return frozenset(hub_adapter_id(task, s) for s, names in HUB_SETS.items() for task in names)


def check_trusted(ref: str, allow_untrusted_hub=None) -> None:
    """Refuse a hub adapter id outside our table unless the opt-in is given (models.untrusted_allowed)."""
    from .models import OPT_IN, UntrustedConfigError, untrusted_allowed

    if ref not in trusted_adapter_ids() and not untrusted_allowed(allow_untrusted_hub):
        raise UntrustedConfigError(f"source {ref!r} is a hub id outside AdapterHub's table that scalearn_lite knows "
                                   f"(hub.HUB_SETS); its files are not checked by anyone: pass {OPT_IN} to load it "
                                   "anyway, or use a task name or an adapter folder")


def check_adapter_configs(folder) -> None:
    """models.check_config_file on each config file of an adapter folder (a local one or a hub download)."""
    from .models import check_config_file

    for name in ADAPTER_CONFIGS:
        check_config_file(Path(folder) / name)


ENV_MIRROR = "SCALEARN_HUB_MIRROR"  # a folder holding hub repositories as <owner>/<name>/ (see mirror_folder)


def mirror_folder(ref: str) -> Optional[Path]:
    """$SCALEARN_HUB_MIRROR/<owner>/<name> when that folder exists: the adapter of hub id `ref` from a local copy
    of the hub (downloaded beforehand for an offline machine, or stand-ins built by a test); else None."""
    root = os.environ.get(ENV_MIRROR)
    folder = Path(root).expanduser() / ref if root and is_hub_id(ref) else None
    return folder if folder is not None and folder.is_dir() else None


def download_adapter(ref: str, allow_untrusted_hub=None) -> Path:
    """The local folder of a hub adapter (downloaded once into the Hugging Face cache, as `adapters` does): only an
    id of our table or with the opt-in (check_trusted), after its adapter_config.json alone was fetched and checked."""
    from huggingface_hub import hf_hub_download
    from adapters.utils import pull_from_hf_model_hub
    from .models import UntrustedConfigError, check_config_file

    check_trusted(ref, allow_untrusted_hub)
    mirrored = mirror_folder(ref)
    if mirrored is not None:  # a local copy of the hub (offline GPU check, tests): no download
        check_adapter_configs(mirrored)
        return mirrored
    try:
        check_config_file(hf_hub_download(ref, "adapter_config.json"))
        folder = Path(pull_from_hf_model_hub(ref))
    except UntrustedConfigError:
        raise
    except Exception as err:  # offline, unknown id, auth: all mean "no such adapter here"
        raise ValueError(f"cannot download hub adapter {ref!r} ({type(err).__name__}: {err}); offline, or no such "
                         "repository? Use a task name (trained by stage 1) or an adapter folder instead") from None
    check_adapter_configs(folder)
    return folder
