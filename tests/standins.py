"""Stand-ins a test builds offline:
* full mode's downloads: a tiny random RoBERTa saved as a model folder (with a byte-level BPE tokenizer trained on GLUE
  sentences) in place of roberta-base (notebook.ENV_FULL_MODEL), and AdapterHub "pf" adapter folders in the hub's own
  layout (adapter_config.json, pytorch_adapter.bin, head_config.json, pytorch_model_head.bin) under
  <mirror>/AdapterHub/roberta-base-pf-<task> (hub.ENV_MIRROR);
* a GPU in placement tests: the "meta" device (inputs_seen_by);
* a user's folders in bad-input tests: a GLUE folder with copies of the real files (glue_folder), a copy of an adapter
  folder (copy_adapter), and training stubbed out (no_training) to show that an error comes before any training;
* the command line in a new process (cli)."""
import csv
import json
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import torch

SPECIAL = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # RoBERTa's ids 0-4: <pad> = 1, as pad_token_id


def _sentences(data_dir: Path, limit: int = 4000):
    """Plain sentences from the local GLUE files (SST-2, RTE, MRPC): the tokenizer's training text."""
    glue = Path(data_dir) / "glue_data"
    for name, columns in (("SST-2", ("sentence",)), ("RTE", ("sentence1", "sentence2")),
                          ("MRPC", ("#1 String", "#2 String"))):
        with open(glue / name / "train.tsv", newline="", encoding="utf-8") as fh:
            for i, row in enumerate(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)):
                if i >= limit:
                    break
                yield from (row[c] for c in columns if row.get(c))


def tiny_roberta(folder: Path, data_dir: Path, hidden: int = 32, layers: int = 2, vocab: int = 2000) -> Path:
    """A random RoBERTa (hidden 32, 2 layers, 2 heads) with its tokenizer, saved as a model folder as roberta-base
    is."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaConfig, RobertaModel, RobertaTokenizerFast

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(_sentences(data_dir), vocab_size=vocab, min_frequency=2, special_tokens=SPECIAL,
                            show_progress=False)
    bpe.save_model(str(folder))  # vocab.json, merges.txt
    tok = RobertaTokenizerFast(vocab_file=str(folder / "vocab.json"), merges_file=str(folder / "merges.txt"))
    tok.save_pretrained(folder)
    config = RobertaConfig(vocab_size=len(tok), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                           intermediate_size=2 * hidden, max_position_embeddings=514, type_vocab_size=1,
                           pad_token_id=1, bos_token_id=0, eos_token_id=2)
    torch.manual_seed(0)
    RobertaModel(config).save_pretrained(folder)
    return folder


def pf_mirror(root: Path, model_folder: Path, tasks) -> Path:
    """For each of our task names, AdapterHub's pf adapter for it (hub.hub_adapter_id(task, "pf")) as a folder in
    the hub's layout under `root`, trained on nothing: random seq_bn weights (reduction factor 16) and a head."""
    from adapters import SeqBnConfig

    from scalearn_lite.hub import hub_adapter_id
    from scalearn_lite.models import load_base
    from scalearn_lite.tasks import get_task

    model, _ = load_base(str(model_folder))
    torch.manual_seed(1)
    for task in tasks:
        ref = hub_adapter_id(task, "pf")
        name = ref.split("-pf-")[-1]
        folder = Path(root) / ref
        if folder.is_dir():
            continue
        model.add_adapter(name, config=SeqBnConfig(reduction_factor=16))
        model.add_classification_head(name, num_labels=max(get_task(task).num_labels, 1))
        with torch.no_grad():
            for n, p in model.named_parameters():
                if f".{name}." in n:
                    p.normal_(0.0, 0.2)  # an adapter that adds something (a fresh one starts at zero output)
        folder.mkdir(parents=True)
        model.save_adapter(str(folder), name, with_head=True)  # pytorch_adapter.bin, as the hub's pf repos hold
        meta = json.loads((folder / "adapter_config.json").read_text())
        meta.update(model_name="roberta-base", name=name)  # what AdapterHub's files say
        (folder / "adapter_config.json").write_text(json.dumps(meta, indent=2))
        model.delete_adapter(name)
        model.delete_head(name)
    return Path(root)


# -------------------------------------------------------------------- a GPU stand-in: the "meta" device
class Reached(Exception):
    """The model's embeddings got their inputs: stop (a meta model computes nothing)."""


@contextmanager
def inputs_seen_by(model):
    """Move `model` to PyTorch's meta device (shapes, no data); yield the list of devices of every tensor its
    embeddings are given, after which a forward pre-hook raises Reached. A helper that feeds CPU tensors to a model
    that is elsewhere records "cpu": the mistake it would make with a model on CUDA, caught without a GPU."""
    seen = []

    def hook(module, args, kwargs):
        seen.extend(t.device.type for t in [*args, *kwargs.values()] if isinstance(t, torch.Tensor))
        raise Reached

    model.to("meta")
    handle = model.base_model.embeddings.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield seen
    finally:
        handle.remove()


def assert_fed_on_meta(seen) -> None:
    assert seen, "the model never ran"
    assert set(seen) == {"meta"}, f"the helper fed the model tensors on {sorted(set(seen))}, the model is on meta"


def tiny_full_run(root: Path, data_dir: Path, method: str = "scalearn"):
    """A finished transfer run on the stand-ins (target RTE, source AdapterHub's pf-mnli from a mirror under `root`,
    32 rows, one epoch): the colab preset with the tiny RoBERTa. Returns (run path, preset)."""
    import os

    from scalearn_lite.config import get_preset
    from scalearn_lite.transfer import transfer

    model = tiny_roberta(Path(root) / "model", data_dir)
    pf_mirror(Path(root) / "mirror", model, ["mnli"])
    os.environ["SCALEARN_HUB_MIRROR"] = str(Path(root) / "mirror")  # callers restore it (monkeypatch)
    preset = get_preset("colab").with_(model=str(model), max_train=32, max_validation=16, max_test=16,
                                       transfer_epochs=1)
    res = transfer("rte", ["AdapterHub/roberta-base-pf-mnli"], method, preset, data_dir=data_dir,
                   include_target=False, out=Path(root) / "run", progress=False)
    return res.path, preset


# ------------------------------------------------------------- a user's folders; training stubbed out
class Trained(Exception):
    """Raised by a stubbed training function: the code got as far as training."""


def no_training(monkeypatch):
    """Make any stage-1 or stage-2 training raise Trained."""
    import importlib

    sources = importlib.import_module("scalearn_lite.sources")
    tr = importlib.import_module("scalearn_lite.transfer")

    def boom(*a, **k):
        raise Trained

    monkeypatch.setattr(sources.training, "fit_source", boom)
    monkeypatch.setattr(tr, "fit", boom)


def copy_adapter(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)  # copy2: mtimes kept, so the recorded fingerprints still apply
    return dst


def glue_folder(root: Path, data_dir: Path, task_dir: str, files=("train.tsv", "dev.tsv"), lines=None) -> Path:
    """root/glue_data/<task_dir>/ with copies of the real files (optionally only their first `lines` lines)."""
    folder = root / "glue_data" / task_dir
    folder.mkdir(parents=True)
    for name in files:
        text = (data_dir / "glue_data" / task_dir / name).read_text(encoding="utf-8")
        if lines is not None:
            text = "\n".join(text.split("\n")[:lines]) + "\n"
        (folder / name).write_text(text, encoding="utf-8")
    return folder


# ------------------------------------------------------------------ the command line in a new process
def cli(*args, env=None):
    """`python -m scalearn_lite <args>` in a new process: its CompletedProcess (returncode, stdout, stderr as text)."""
    return subprocess.run([sys.executable, "-m", "scalearn_lite", *args], capture_output=True, text=True, env=env)


def labels_of(data_dir, task):
    """The test labels of a task under the tiny preset (what a constant predictor is scored on)."""
    from scalearn_lite.config import get_preset
    from scalearn_lite.data import load_task_data
    from scalearn_lite.tasks import get_task

    return [r["label"] for r in load_task_data(get_task(task), get_preset("tiny"), data_dir)["test"]]
