"""Stage 1: one seq_bn (Pfeiffer) bottleneck adapter + task head per source task, trained, cached, checked, loaded.

The package: store.py (where an adapter lives: roles, folders, cache keys, integrity, fingerprints), training.py
(training one, or reusing it from the cache), loading.py (checking an adapter against the base model and loading
it into a model), refs.py (source references: task names, adapter folders, hub ids; their order and names). Every
public name is importable from `scalearn_lite.sources`.
"""
from __future__ import annotations

from .store import (
    SOURCE_META, ROLES, WEIGHT_FILES, effective_role, source_dir, adapter_dir, data_key, weights_file, read_weights,
    file_record, corruption, reusable, require_weights_file, weights_fingerprint, source_fingerprint,
    adapter_folder_name, stage1_fit_settings, fit_settings, cache_key,
)
from .refs import (
    order_sources, task_name_of, same_task, is_task_ref, source_label, source_names, own_adapter_seed, Stage1Adapter,
    stage1_adapter, source_task, ref_kind,
)
from .loading import (
    check_adapter_folder, check_adapter_files, check_untrusted, check_sources, load_adapter_into,
    loaded_fingerprints, extract_weights, source_weights,
)
from .training import (
    seq_bn_config, add_task_head, history_csv, fit_source, SourceResult, train_source, resolve_source,
)

__all__ = [
    "SOURCE_META", "ROLES", "WEIGHT_FILES", "effective_role", "source_dir", "adapter_dir", "data_key", "weights_file",
    "read_weights", "file_record", "corruption", "reusable", "require_weights_file", "weights_fingerprint",
    "source_fingerprint", "adapter_folder_name", "stage1_fit_settings", "fit_settings", "cache_key",
    "order_sources", "task_name_of", "same_task", "is_task_ref", "source_label", "source_names", "own_adapter_seed",
    "Stage1Adapter", "stage1_adapter", "source_task", "ref_kind", "check_adapter_folder", "check_adapter_files",
    "check_untrusted", "check_sources", "load_adapter_into", "loaded_fingerprints", "extract_weights",
    "source_weights", "seq_bn_config", "add_task_head", "history_csv", "fit_source", "SourceResult", "train_source",
    "resolve_source",
]
