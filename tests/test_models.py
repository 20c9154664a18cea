"""Base models: every config is checked before transformers sees it (CVE-2026-4372), hub ids outside the ones we
name need an opt-in, the attention kernel is always passed explicitly (eager and SDPA compute the same layer), and
eval outputs are computed once per batch."""
import json
import os
import socket
from pathlib import Path

import huggingface_hub
import pytest
import torch

from scalearn_lite import cli, hub, models
from scalearn_lite.config import Preset, get_preset
from scalearn_lite.models import UntrustedConfigError, check_model, embedded_model_path, load_base, load_config

EVIL = "attacker/evil-kernels"


def crafted(tmp_path: Path, edit, name: str = "evil") -> Path:
    """A copy of the embedded model folder (weights linked, not copied) whose config.json is edited by `edit`."""
    src, dst = embedded_model_path(), tmp_path / name
    dst.mkdir()
    for f in src.iterdir():
        if f.name != "config.json":
            (dst / f.name).symlink_to(f)
    cfg = json.loads((src / "config.json").read_text())
    edit(cfg)
    (dst / "config.json").write_text(json.dumps(cfg))
    return dst


@pytest.fixture
def no_network(monkeypatch):
    """Any hub download or socket connection fails the test."""
    def refuse(*a, **k):
        raise AssertionError(f"network access: {a} {k}")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def files_under(*roots) -> set:
    return {p for r in roots if Path(r).exists() for p in Path(r).rglob("*")}


@pytest.mark.parametrize("field", ["_attn_implementation_internal", "_attn_implementation", "attn_implementation"])
def test_a_crafted_model_folder_is_refused_before_any_network_access_or_file(field, data_dir, tmp_path, capsys,
                                                                              no_network, monkeypatch):
    evil = crafted(tmp_path, lambda c: c.update({field: EVIL}))
    cache = Path(os.environ["SCALEARN_CACHE_DIR"])
    before = files_under(cache, tmp_path)
    monkeypatch.chdir(tmp_path)  # the default runs/ folder would land here
    for argv in (["transfer", "rte", "--sources", "cola", "--model", str(evil), "--preset", "tiny"],
                 ["transfer", "rte", "--sources", "cola", "--model", str(evil), "--out", str(tmp_path / "run")],
                 ["train-source", "rte", "--model", str(evil), "--preset", "tiny", "--out", str(tmp_path / "ad")],
                 ["params", "--model", str(evil)]):
        code = cli.main(argv + ["--data-dir", str(data_dir), "--quiet"] * (argv[0] != "params"))
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1, err
        assert field in err and str(evil / "config.json") in err and EVIL in err and "CVE-2026-4372" in err
    assert files_under(cache, tmp_path) == before  # nothing written: no run, no lock, no cache folder


def test_every_load_path_checks_the_config(tmp_path, no_network):
    evil = crafted(tmp_path, lambda c: c.update(_attn_implementation_internal=EVIL))
    for load in (lambda: load_config(str(evil)), lambda: models.load_base(str(evil), 1)):
        with pytest.raises(UntrustedConfigError, match=f"_attn_implementation_internal = '{EVIL}'"):
            load()
    nested = crafted(tmp_path, lambda c: c.update(text_config={"_attn_implementation_internal": EVIL}), "nested")
    with pytest.raises(UntrustedConfigError, match="text_config._attn_implementation_internal"):
        check_model(str(nested))
    mapping = crafted(tmp_path, lambda c: c.update(attn_implementation={"": "eager", "vision": EVIL}), "mapping")
    with pytest.raises(UntrustedConfigError, match="attn_implementation = 'attacker/evil-kernels'"):
        check_model(str(mapping))
    code = crafted(tmp_path, lambda c: c.update(auto_map={"AutoModel": "x.Model"}), "code")
    with pytest.raises(UntrustedConfigError, match="auto_map asks for custom model code"):
        check_model(str(code))


def test_a_builtin_kernel_in_the_file_is_accepted_and_ours_is_passed_explicitly(tmp_path, no_network):
    folder = crafted(tmp_path, lambda c: c.update(_attn_implementation_internal="sdpa"), "sdpa")
    assert load_config(str(folder), attention="eager")._attn_implementation == "eager"
    net, _ = models.load_base(str(folder), 1, attention="eager")
    assert net.config._attn_implementation == "eager"


def test_a_hub_model_outside_our_names_needs_the_opt_in_then_its_config_alone_is_fetched(tmp_path, monkeypatch,
                                                                                      capsys):
    evil = crafted(tmp_path, lambda c: c.update(_attn_implementation_internal=EVIL))
    asked = []

    def download(repo, filename, **k):
        asked.append((repo, filename))
        return str(evil / filename)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    monkeypatch.delenv(models.ALLOW_UNTRUSTED_ENV, raising=False)
    with pytest.raises(UntrustedConfigError, match="'someone/model' is neither a local folder.*--allow-untrusted-hub"):
        load_config("someone/model")
    assert asked == []  # refused before any download
    with pytest.raises(UntrustedConfigError, match="_attn_implementation_internal"):
        load_config("someone/model", allow_untrusted_hub=True)
    assert asked == [("someone/model", "config.json")]  # one file, not the repository
    code = cli.main(["params", "--model", "someone/model", "--allow-untrusted-hub"])
    assert code == 2 and "_attn_implementation_internal" in capsys.readouterr().err
    assert models.ALLOW_UNTRUSTED_ENV not in os.environ  # the flag's opt-in ends with the command
    with models.untrusted_hub_allowed():
        with pytest.raises(UntrustedConfigError, match="_attn_implementation_internal"):
            check_model("someone/model")
    with pytest.raises(UntrustedConfigError, match="neither a local folder"):
        check_model("someone/model", fetch=False)


def test_hub_sources_outside_the_table_need_the_opt_in_before_anything_is_written(data_dir, tmp_path, capsys,
                                                                                no_network, monkeypatch):
    monkeypatch.delenv(models.ALLOW_UNTRUSTED_ENV, raising=False)
    cache = Path(os.environ["SCALEARN_CACHE_DIR"])
    before = files_under(cache, tmp_path)
    code = cli.main(["transfer", "rte", "--sources", "cola,evil/nonexistent", "--preset", "tiny", "--data-dir",
                     str(data_dir), "--out", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "'evil/nonexistent' is a hub id outside AdapterHub's table" in err and err.count("\n") == 1
    assert files_under(cache, tmp_path) == before
    with pytest.raises(UntrustedConfigError, match="--allow-untrusted-hub"):
        hub.download_adapter("evil/nonexistent")
    hub.check_trusted("AdapterHub/roberta-base-pf-rte")  # in our table: no opt-in needed
    hub.check_trusted("evil/nonexistent", allow_untrusted_hub=True)


def test_an_adapter_folder_with_a_crafted_config_is_refused(tmp_path, no_network):
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps({"config": {}, "hidden_size": 384}))
    (folder / "head_config.json").write_text(json.dumps({"config": {"_attn_implementation_internal": EVIL}}))
    with pytest.raises(UntrustedConfigError, match=r"head_config.json: config._attn_implementation_internal"):
        hub.check_adapter_configs(folder)
    from scalearn_lite.sources import check_untrusted

    with pytest.raises(UntrustedConfigError, match="head_config.json"):
        check_untrusted("embedded", [str(folder)])


def test_reuse_eval_outputs_computes_each_eval_batch_once_and_never_in_training():
    from scalearn_lite.models import encoder_layers, reuse_eval_outputs

    tiny = get_preset("tiny")
    net, tok = load_base(tiny.model, tiny.num_layers)
    computed = []
    encoder_layers(net)[0].register_forward_hook(lambda *a: computed.append(1))
    batch = tok(["a short one", "a somewhat longer sentence"], padding=True, return_tensors="pt")
    other = tok(["something else entirely"], return_tensors="pt")
    with reuse_eval_outputs(net.base_model) as counts:
        net.eval()
        with torch.no_grad():
            first = net.base_model(**batch).last_hidden_state
            again = net.base_model(**batch).last_hidden_state
            net.base_model(**other)
        assert again is first and len(computed) == 2  # the same inputs: computed once; other inputs: computed
        assert counts == {"computed": 2, "reused": 1}
        with torch.autocast("cpu", dtype=torch.bfloat16), torch.no_grad():
            net.base_model(**batch)  # another precision is another computation
        assert len(computed) == 3
        net.train()
        net.base_model(**batch), net.base_model(**batch)
        assert len(computed) == 5  # training mode (dropout) always computes
    net.eval()
    assert "forward" not in vars(net.base_model)  # the class's forward is back
    with torch.no_grad():
        torch.testing.assert_close(net.base_model(**batch).last_hidden_state, first, rtol=0, atol=0)
    assert len(computed) == 6


def test_eager_and_sdpa_attention_compute_the_same_layer_and_auto_is_eager_on_cpu(monkeypatch):
    """The attention kernel is a speed choice only: in eval mode both give the same logits (embedded model, 1 layer)."""
    from scalearn_lite.models import attention_used, load_base

    eager, tok = load_base("embedded", 1, attention="eager")
    sdpa, _ = load_base("embedded", 1, attention="sdpa")
    assert eager.config._attn_implementation == "eager" and sdpa.config._attn_implementation == "sdpa"
    batch = tok(["a short one", "a somewhat longer sentence than the first"], padding=True, return_tensors="pt")
    with torch.no_grad():
        a = eager.eval().base_model(**batch).last_hidden_state
        b = sdpa.eval().base_model(**batch).last_hidden_state
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert attention_used("auto") == "eager" and attention_used("sdpa") == "sdpa"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert attention_used("auto") == "sdpa"
    with pytest.raises(ValueError, match="attention must be one of"):
        Preset(name="x", attention="flash")
