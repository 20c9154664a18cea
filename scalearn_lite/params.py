"""An honest parameter report: transfer parameters per method, counted from instantiated modules; and models at a
named model's shapes (synthetic configs, random weights) for reports and benchmarks that need no download."""
from __future__ import annotations

from typing import Dict, Optional

import torch

from .config import VARIANTS
from .scaling import Omega


def _meta_model(config):
    from adapters import AutoAdapterModel

    with torch.device("meta"):  # shapes only: instant, no memory, whatever the model size
        return AutoAdapterModel.from_config(config)


def count_parameters(config, num_sources: int) -> Dict[str, int]:
    """{method: transfer parameters} for a base config and S sources, plus "base" and "adapter" (one source)."""
    from adapters import SeqBnConfig
    from adapters.composition import Fuse

    model = _meta_model(config)
    base = sum(p.numel() for p in model.parameters())
    names = [f"s{i}" for i in range(num_sources)]
    for n in names:
        model.add_adapter(n, config=SeqBnConfig(reduction_factor=16))  # = sources.seq_bn_config()
    adapter = sum(p.numel() for n, p in model.named_parameters() if ".adapters.s0." in n)
    model.add_adapter_fusion(Fuse(*names), "dynamic")
    fusion = sum(p.numel() for n, p in model.named_parameters() if "adapter_fusion_layer" in n)
    counts = {m: Omega(cfg, num_sources, config.hidden_size, config.num_hidden_layers).weight.numel()
              for m, cfg in VARIANTS.items()}
    counts.update({"adapterfusion": fusion, "adapter": adapter, "fixed_omega": 0, "average": 0, "head_only": 0,
                   "adaptersoup": 0, "finetune": base, "base": base})
    return counts


def synthetic_config(hidden_size: int, num_layers: int, model_type: str = "roberta"):
    """A config of the given width and depth (heads of 64 units, FFN 4×, roberta-base vocabulary)."""
    from transformers import AutoConfig

    return AutoConfig.for_model(model_type, hidden_size=hidden_size, num_hidden_layers=num_layers,
                                num_attention_heads=max(1, hidden_size // 64), intermediate_size=4 * hidden_size,
                                vocab_size=50265, max_position_embeddings=514, type_vocab_size=1)


def report(counts: Dict[str, int]) -> list:
    """Rows {method, transfer_params, pct_of_fusion, pct_of_base} for printing."""
    fusion, base = counts["adapterfusion"], counts["base"]
    return [{"method": m, "transfer_params": n, "pct_of_fusion": 100.0 * n / fusion, "pct_of_base": 100.0 * n / base}
            for m, n in counts.items() if m != "base"]


# Shapes of models whose config need not be downloaded for a random-weights benchmark (hidden, layers).
BUILT_IN_SHAPES = {"roberta-base": (768, 12)}


def random_base(model: str, num_layers: Optional[int], seed: int = 0):
    """A randomly initialised AdapterModel at `model`'s shapes: built-in for roberta-base (no download), else read
    from the model's config (a local folder or the embedded model)."""
    from .models import from_config, load_config, model_id

    torch.manual_seed(seed)
    if model in BUILT_IN_SHAPES:
        hidden, layers = BUILT_IN_SHAPES[model]
        config = synthetic_config(hidden, num_layers or layers)  # roberta-base: vocabulary 50265, 514 positions
    else:
        config = load_config(model, num_layers)
    base = from_config(config)
    base.scalearn_base = f"random-{model_id(model, num_layers)}"
    return base
