"""Data loading (scalearn_lite/data/): locations, readers, templates, splits, k-shot and summaries on the real
GLUE / SuperGLUE files (offline, CPU, seconds), HumSet and ReCoRD on synthetic files; bad input is refused
naming the file and line.

Data dir: $SCALEARN_DATA_DIR, else ../shared/data next to the repository; tests that need it skip otherwise.
"""
import csv
import importlib
import json
import os
import re
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from scalearn_lite import data, tasks
from scalearn_lite.config import get_preset
from scalearn_lite.tasks import TASKS, get_task
from standins import glue_folder, no_training

sources = importlib.import_module("scalearn_lite.sources")
tr = importlib.import_module("scalearn_lite.transfer")
TINY = get_preset("tiny")

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
DATA_DIR = Path(os.environ.get("SCALEARN_DATA_DIR") or REPO.parent / "shared" / "data")
needs_data = pytest.mark.skipif(not (DATA_DIR / "glue_data").is_dir(),
                                reason=f"real GLUE/SuperGLUE files not found at {DATA_DIR} (set SCALEARN_DATA_DIR)")

# Official row counts and label distributions (label id -> count), checked against the published numbers:
# CoLA 70.4% acceptable, MRPC 67.4% / 68.4% paraphrases, RTE 1249/1241, BoolQ dev majority 62.2%,
# COPA dev 55/45, WiC balanced, WSC dev majority 63.5%, MultiRC 27,243 / 4,848 answer options.
EXPECTED = {
    "cola": ((8551, {0: 2528, 1: 6023}), (1043, {0: 322, 1: 721})),
    "sst2": ((67349, {0: 29780, 1: 37569}), (872, {0: 428, 1: 444})),
    "mrpc": ((3668, {0: 1194, 1: 2474}), (408, {0: 129, 1: 279})),
    "stsb": ((5749, None), (1500, None)),
    "rte": ((2490, {0: 1249, 1: 1241}), (277, {0: 146, 1: 131})),
    "qnli": (None, (5463, {0: 2702, 1: 2761})),
    "boolq": (None, (3270, {0: 1237, 1: 2033})),
    "cb": ((250, {0: 115, 1: 119, 2: 16}), (56, {0: 23, 1: 28, 2: 5})),
    "copa": ((400, {0: 195, 1: 205}), (100, {0: 55, 1: 45})),
    "multirc": ((27243, {0: 15218, 1: 12025}), (4848, {0: 2773, 1: 2075})),
    "superglue_rte": ((2490, {0: 1249, 1: 1241}), (277, {0: 146, 1: 131})),
    "wic": ((5428, {0: 2714, 1: 2714}), (638, {0: 319, 1: 319})),
    "wsc": ((554, {0: 295, 1: 259}), (104, {0: 66, 1: 38})),
}
HUB_FIELDS = {
    "cola": {"sentence", "label", "idx"}, "sst2": {"sentence", "label", "idx"},
    "mrpc": {"sentence1", "sentence2", "label", "idx"}, "stsb": {"sentence1", "sentence2", "label", "idx"},
    "rte": {"sentence1", "sentence2", "label", "idx"}, "qnli": {"question", "sentence", "label", "idx"},
    "boolq": {"question", "passage", "label", "idx"}, "cb": {"premise", "hypothesis", "label", "idx"},
    "copa": {"premise", "choice1", "choice2", "question", "label", "idx"},
    "multirc": {"paragraph", "question", "answer", "idx", "label"},
    "superglue_rte": {"premise", "hypothesis", "label", "idx"},
    "wic": {"word", "sentence1", "sentence2", "start1", "start2", "end1", "end2", "label", "idx"},
    "wsc": {"text", "span1_index", "span2_index", "span1_text", "span2_text", "label", "idx"},
}
TRAINABLE = [t for t, (train, _) in EXPECTED.items() if train is not None]


def col(ds, name):
    """One column of a datasets.Dataset as a list (fast arrow path)."""
    return ds.select_columns([name]).to_dict()[name]


def keys(ds):
    """(text_a, text_b, label) per row of a Dataset or a list of processed rows."""
    if isinstance(ds, list):
        return [(r["text_a"], r["text_b"], r["label"]) for r in ds]
    return list(zip(col(ds, "text_a"), col(ds, "text_b"), col(ds, "label")))


@pytest.fixture(scope="module")
def raw():
    """Raw local splits of every offline task, loaded once."""
    if not (DATA_DIR / "glue_data").is_dir():
        pytest.skip(f"real GLUE/SuperGLUE files not found at {DATA_DIR}")
    return {name: data.load_raw(name, DATA_DIR, source="local") for name in EXPECTED}


@pytest.fixture(scope="module")
def splits():
    """load_splits for every trainable offline task (seed 42), loaded once."""
    if not (DATA_DIR / "glue_data").is_dir():
        pytest.skip(f"real GLUE/SuperGLUE files not found at {DATA_DIR}")
    return {name: data.load_splits(name, DATA_DIR) for name in TRAINABLE}


# ------------------------------------------------------------------------------ locations and sources
def test_resolve_data_dir_and_cache_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("SCALEARN_DATA_DIR", raising=False)
    assert data.resolve_data_dir() is None
    assert data.resolve_data_dir(tmp_path) == tmp_path
    monkeypatch.setenv("SCALEARN_DATA_DIR", str(tmp_path))
    assert data.resolve_data_dir() == tmp_path
    assert data.resolve_data_dir("elsewhere") == Path("elsewhere")
    monkeypatch.delenv("SCALEARN_CACHE_DIR", raising=False)
    assert data.cache_dir() == REPO / "data_cache"
    monkeypatch.setenv("SCALEARN_CACHE_DIR", str(tmp_path / "c"))
    assert data.cache_dir() == tmp_path / "c"


def test_an_installed_package_caches_in_the_users_cache_not_in_site_packages(monkeypatch, tmp_path):
    monkeypatch.delenv("SCALEARN_CACHE_DIR", raising=False)
    installed = tmp_path / "site-packages" / "scalearn_lite"  # a wheel's copy: no pyproject.toml beside it
    installed.mkdir(parents=True)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data.cache_dir(installed) == tmp_path / "xdg" / "scalearn_lite"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data.cache_dir(installed) == tmp_path / "home" / ".cache" / "scalearn_lite"
    assert data.cache_dir(REPO / "scalearn_lite") == REPO / "data_cache"  # the source checkout keeps its folder


def test_missing_folder_error_names_exact_path(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        data.load_raw("rte", tmp_path, source="local")
    assert str(tmp_path / "glue_data" / "RTE" / "dev.tsv") in str(err.value)
    assert "SCALEARN_DATA_DIR" in str(err.value)
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "superglue" / "CB" / "val.jsonl")):
        data.load_raw("cb", tmp_path, source="local")


@needs_data
def test_missing_offline_task_names_path():
    with pytest.raises(FileNotFoundError, match="dev_matched.tsv"):
        data.load_raw("mnli", DATA_DIR, source="local")


def test_hub_unreachable_gives_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(data.locations, "hub_reachable", lambda: False)
    monkeypatch.delenv("SCALEARN_DATA_DIR", raising=False)
    with pytest.raises(ConnectionError, match="SCALEARN_DATA_DIR"):
        data.load_raw("rte")  # auto, no data dir -> hub
    with pytest.raises(FileNotFoundError, match="looked for .*RTE/train.tsv.*nyu-mll/glue"):
        data.load_raw("rte", tmp_path)  # auto, files absent -> hub fails -> names the local paths too
    with pytest.raises(FileNotFoundError, match="HumSet"):
        data.load_raw("sectors", tmp_path)  # not on the hub at all


def test_hub_source_converts_to_rows(monkeypatch, tmp_path):
    import datasets

    calls = []

    def fake_load_dataset(path, config, revision, cache_dir):
        calls.append((path, config, revision, cache_dir))
        split = datasets.Dataset.from_dict({"premise": ["p"], "hypothesis": ["h"], "label": [2], "idx": [0]})
        return datasets.DatasetDict(train=split, validation_matched=split, validation_mismatched=split)

    monkeypatch.setattr(data.locations, "hub_reachable", lambda: True)
    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    monkeypatch.setenv("SCALEARN_CACHE_DIR", str(tmp_path))
    out = data.load_raw("mnli", source="hub")
    assert calls == [("nyu-mll/glue", "mnli", get_task("mnli").hub_revision, str(tmp_path / "hf"))]
    assert len(get_task("mnli").hub_revision) == 40  # a pinned commit, not a branch
    assert set(out) == {"train", "test"}
    assert out["test"] == [{"premise": "p", "hypothesis": "h", "label": 2, "idx": 0}]
    assert data.describe_source("mnli", source="hub") == "nyu-mll/glue:mnli"


def test_hub_datasets_load_at_a_fixed_revision(monkeypatch):
    import datasets

    calls = []

    class Split(list):
        def to_list(self):
            return list(self)

    def fake_load(path, config, **kw):
        calls.append((path, config, kw))
        return {"train": Split([{"x": 1}]), "validation": Split([{"x": 2}])}

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    monkeypatch.setattr(data.locations, "hub_reachable", lambda: True)
    data.load_hub("rte")
    data.load_hub("cb")
    assert [(p, c, kw["revision"]) for p, c, kw in calls] == [
        ("nyu-mll/glue", "rte", tasks.GLUE_REVISION), ("aps/super_glue", "cb", tasks.SUPERGLUE_REVISION)]
    for rev in (tasks.GLUE_REVISION, tasks.SUPERGLUE_REVISION):
        assert len(rev) == 40 and int(rev, 16) >= 0  # a commit, not a branch name
    assert all(t.hub_revision for t in tasks.TASKS.values() if t.hub_path)
    assert data.data_identity("cb", source="hub") == {"hub": "aps/super_glue", "config": "cb",
                                                      "revision": tasks.SUPERGLUE_REVISION}


@needs_data
def test_auto_source_prefers_local_files():
    assert data.describe_source("rte", DATA_DIR) == str(DATA_DIR / "glue_data" / "RTE")
    assert data.describe_source("record", DATA_DIR) == "aps/super_glue:record"  # no local ReCoRD -> hub
    with pytest.raises(ValueError, match="source"):
        data.load_raw("rte", DATA_DIR, source="web")


# --------------------------------------------------------- local files: counts, labels, parsing rules
@needs_data
@pytest.mark.parametrize("name", list(EXPECTED))
def test_official_counts_and_label_distribution(raw, name):
    for split, expected in zip(("train", "test"), EXPECTED[name]):
        if expected is None:
            assert split not in raw[name]
            continue
        rows = raw[name][split]
        count, dist = expected
        assert len(rows) == count
        if dist is not None:
            assert dict(Counter(r["label"] for r in rows)) == dist
        assert all(set(r) == HUB_FIELDS[name] for r in rows)


@needs_data
def test_stsb_labels_are_floats(raw):
    rows = raw["stsb"]["test"]
    assert rows[0]["label"] == 5.0 and rows[1]["label"] == 4.75
    assert all(isinstance(r["label"], float) and 0.0 <= r["label"] <= 5.0 for r in raw["stsb"]["train"])


@needs_data
def test_rte_unbalanced_quote_row_stays_one_row(raw):
    row = raw["rte"]["train"][2164]
    assert row["idx"] == 2164
    assert row["sentence1"] == ("\"That film wasn't too successful, but then 'WarGames,' which was successful, "
                                "came out right when I won the Tony for 'Brighton Beach' in 1983.")
    assert row["sentence2"] == 'The film "WarGames" was shot in 1983.'
    assert row["label"] == 1  # not_entailment
    assert [r["idx"] for r in raw["rte"]["train"]] == list(range(2490))


@needs_data
def test_mrpc_bom_header_and_cola_without_header(raw):
    first = raw["mrpc"]["train"][0]
    assert first["sentence1"].startswith("Amrozi accused his brother") and first["label"] == 1
    assert raw["cola"]["train"][0] == {"sentence": "Our friends won't buy this analysis, let alone the next one "
                                                    "we propose.", "label": 1, "idx": 0}
    last_line = (DATA_DIR / "glue_data" / "CoLA" / "dev.tsv").read_text(encoding="utf-8").split("\n")[-1]
    assert raw["cola"]["test"][-1]["sentence"] == last_line.split("\t")[3]


@needs_data
@pytest.mark.parametrize("name", ["rte", "qnli"])
def test_glue_label_strings_map_to_classlabel_names(raw, name):
    path = DATA_DIR / get_task(name).local_dir / "dev.tsv"
    strings = [line.split("\t")[-1] for line in path.read_text(encoding="utf-8").split("\n")[1:] if line]
    assert [get_task(name).label_names[r["label"]] for r in raw[name]["test"]] == strings


@needs_data
@pytest.mark.parametrize("name", ["cb", "superglue_rte", "boolq", "wic", "wsc"])
def test_superglue_label_values_map_to_classlabel_names(raw, name):
    path = DATA_DIR / get_task(name).local_dir / "val.jsonl"
    values = [json.loads(line)["label"] for line in path.read_text(encoding="utf-8").splitlines()]
    names = [get_task(name).label_names[r["label"]] for r in raw[name]["test"]]
    assert names == [str(v) for v in values]  # bools -> "False"/"True", strings unchanged


@needs_data
def test_glue_and_superglue_rte_are_the_same_pairs(raw):
    # Same pairs and labels; SuperGLUE's copy lost some '"' characters (70 train rows), GLUE's TSV keeps them.
    for split in ("train", "test"):
        glue, sg = raw["rte"][split], raw["superglue_rte"][split]
        unquote = lambda t: t.replace('"', "")  # noqa: E731
        assert [(unquote(r["sentence1"]), unquote(r["sentence2"]), r["label"]) for r in glue] == \
               [(unquote(r["premise"]), unquote(r["hypothesis"]), r["label"]) for r in sg]


@needs_data
def test_multirc_flattened_in_document_order(raw):
    rows = raw["multirc"]["test"]
    assert rows[0]["idx"] == {"paragraph": 0, "question": 0, "answer": 0}
    assert rows[0]["answer"] == "No" and rows[0]["label"] == 0 and rows[1]["label"] == 1
    assert rows[0]["question"].startswith("Would the mass of a baseball")
    assert rows[4]["idx"] == {"paragraph": 0, "question": 1, "answer": 4}
    assert len({r["idx"]["question"] for r in rows}) == 953
    assert len({r["idx"]["paragraph"] for r in rows}) == 83


@needs_data
def test_wsc_fixed_spans_are_substrings(raw):
    for row in raw["wsc"]["train"] + raw["wsc"]["test"]:
        assert row["span2_text"] in row["text"]
        assert row["span1_text"] in row["text"] or "Kamenev" in row["span1_text"]
    first = raw["wsc"]["test"][0]
    assert (first["span1_index"], first["span2_index"], first["span1_text"], first["span2_text"]) == \
           (32, 47, "anyone", "him")


# ------------------------------------------------------------------------------------------ templates
@needs_data
def test_templates_pairs(raw):
    wic = data.process_rows("wic", raw["wic"]["test"][:1])[0]
    assert wic["text_a"] == "class: An emerging professional class."
    assert wic["text_b"].startswith("class: Apologizing for losing your temper")
    boolq_raw = raw["boolq"]["test"][0]
    boolq = data.process_rows("boolq", [boolq_raw])[0]
    assert (boolq["text_a"], boolq["text_b"]) == (boolq_raw["question"], boolq_raw["passage"])
    mrc_raw = raw["multirc"]["test"][0]
    mrc = data.process_rows("multirc", [mrc_raw])[0]
    assert mrc["text_a"] == mrc_raw["paragraph"]
    assert mrc["text_b"] == mrc_raw["question"] + " No" and mrc["group"] == 0
    sst = data.process_rows("sst2", raw["sst2"]["test"][:1])[0]
    assert sst["text_b"] is None and sst["label"] == 1 and sst["group"] == 0
    stsb = data.process_rows("stsb", raw["stsb"]["test"][:1])[0]
    assert stsb["label"] == 5.0 and isinstance(stsb["label"], float)


@needs_data
def test_wsc_template_marks_pronoun_with_asterisks(raw):
    row = data.process_rows("wsc", raw["wsc"]["test"][:1])[0]
    assert row["text_a"].endswith("could take his claim away from *him* .")
    assert row["text_a"].count("*") == 2 and row["text_b"] == "anyone"
    words = row["text_a"].split()
    assert words[47] == "*him*"


@needs_data
def test_copa_because_so_multiple_choice(raw):
    rows = data.process_rows("copa", raw["copa"]["test"])
    first = rows[0]  # question "effect"
    assert first["choices_a"] == ["The man turned on the faucet. so"] * 2
    assert first["choices_b"] == ["The toilet filled with water.", "Water flowed from the spout."]
    assert first["label"] == 1
    cause = next(r for r, s in zip(rows, raw["copa"]["test"]) if s["question"] == "cause")
    assert cause["choices_a"][0].endswith(" because")


def test_process_rows_humset_needs_labels():
    with pytest.raises(ValueError, match="resolve_labels"):
        data.process_rows("sectors", [{"excerpt": "x", "sectors": ["Health"]}])


# --------------------------------------------------------------------------------------------- splits
@needs_data
@pytest.mark.parametrize("name", TRAINABLE)
def test_90_10_split_partitions_official_train(splits, raw, name):
    dd = splits[name]
    train, val, test = dd["train"], dd["validation"], dd["test"]
    official = data.process_rows(name, raw[name]["train"])
    assert len(train) + len(val) == len(official)
    assert len(test) == len(data.process_rows(name, raw[name]["test"]))
    if get_task(name).group_field is None:  # group = row position: a partition of range(n)
        assert len(val) == int(np.ceil(0.1 * len(official)))
        assert sorted(col(train, "group") + col(val, "group")) == list(range(len(official)))
    assert Counter(keys(train)) + Counter(keys(val)) == Counter(keys(official))


@needs_data
@pytest.mark.parametrize("name", [n for n in TRAINABLE if get_task(n).problem == "classification"
                                  and get_task(n).group_field is None] + ["copa"])
def test_split_is_stratified_within_one_row(splits, name):
    train, val = splits[name]["train"], splits[name]["validation"]
    full = Counter(col(train, "label")) + Counter(col(val, "label"))
    n = sum(full.values())
    got = Counter(col(val, "label"))
    for label, count in full.items():
        assert abs(got[label] - len(val) * count / n) <= 1, (name, label)


@needs_data
def test_split_equals_datasets_train_test_split_of_the_paper(raw):
    ds = data.to_dataset("rte", data.process_rows("rte", raw["rte"]["train"]))
    train, val = data.split_train_validation("rte", ds, seed=42)
    ref = ds.train_test_split(test_size=0.1, shuffle=True, seed=42, stratify_by_column="label")
    assert col(train, "group") == col(ref["train"], "group")
    assert col(val, "group") == col(ref["test"], "group")


@needs_data
def test_split_deterministic_and_seed_dependent(splits):
    again = data.load_splits("rte", DATA_DIR, seed=42)
    other = data.load_splits("rte", DATA_DIR, seed=43)
    assert col(again["validation"], "group") == col(splits["rte"]["validation"], "group")
    assert col(other["validation"], "group") != col(splits["rte"]["validation"], "group")
    assert col(again["test"], "group") == col(other["test"], "group") == list(range(277))


@needs_data
def test_groups_never_straddle(splits):
    train, val = splits["multirc"]["train"], splits["multirc"]["validation"]
    assert not set(col(train, "group")) & set(col(val, "group"))
    n_groups = len(set(col(train, "group")) | set(col(val, "group")))
    assert n_groups == 5131 and len(set(col(val, "group"))) == int(np.ceil(0.1 * n_groups))


@needs_data
def test_split_features_are_uniform(splits):
    assert splits["rte"]["train"].features["label"].names == ["entailment", "not_entailment"]
    assert set(splits["copa"]["train"].column_names) == {"text_a", "text_b", "label", "group",
                                                        "choices_a", "choices_b"}
    assert splits["stsb"]["train"].features["label"].dtype == "float64"


@needs_data
def test_max_train_subsamples_after_split(splits):
    small = data.load_splits("sst2", DATA_DIR, max_train=1000)
    assert len(small["train"]) == 1000
    assert len(small["validation"]) == len(splits["sst2"]["validation"])
    assert set(col(small["train"], "group")) <= set(col(splits["sst2"]["train"], "group"))
    full = Counter(col(splits["sst2"]["train"], "label"))
    got = Counter(col(small["train"], "label"))
    for label, count in full.items():
        assert abs(got[label] - 1000 * count / sum(full.values())) <= 1
    assert data.load_splits("stsb", DATA_DIR, max_train=50)["train"].num_rows == 50


@needs_data
def test_dev_only_tasks_cannot_be_targets():
    for name in ("qnli", "boolq"):
        with pytest.raises(ValueError, match="no training split") as err:
            data.load_splits(name, DATA_DIR)
        assert "dev_as_train=True" in str(err.value) and "source" in str(err.value)
    dd = data.load_splits("qnli", DATA_DIR, dev_as_train=True)
    assert len(dd["train"]) + len(dd["validation"]) == 5463 and len(dd["test"]) == 0
    assert dd["test"].column_names == dd["train"].column_names


# --------------------------------------------------------------------------------------------- k-shot
@needs_data
@pytest.mark.parametrize("k", [4, 16, 32, 100])
def test_k_shot_sizes_balance_determinism(splits, k):
    train = splits["cb"]["train"]  # 3 classes, "neutral" rare
    shot = data.sample_k_shot(train, k, seed=0)
    assert len(shot) == k
    counts = Counter(col(shot, "label"))
    available = Counter(col(train, "label"))
    for label in available:
        assert counts[label] >= min(k // 3, available[label])
    assert data.sample_k_shot(train, k, seed=0)["group"][:] == col(shot, "group")
    assert data.sample_k_shot(train, k, seed=1)["group"][:] != col(shot, "group")


def test_k_shot_on_rows_balanced_and_errors():
    rows = [{"label": i % 2, "i": i} for i in range(10)] + [{"label": 2, "i": 10}]
    counts = Counter(r["label"] for r in data.sample_k_shot(rows, 6, seed=3))
    assert counts[2] == 1 and sorted([counts[0], counts[1]]) == [2, 3]  # the rare class gives its share away
    assert sorted(Counter(r["label"] for r in data.sample_k_shot(rows, 4, seed=0)).values()) == [1, 1, 2]
    with pytest.raises(ValueError, match="11 rows"):
        data.sample_k_shot(rows, 12, seed=0)
    with pytest.raises(ValueError, match="positive"):
        data.sample_k_shot(rows, 0, seed=0)
    floats = [{"label": float(i)} for i in range(20)]
    assert len(data.sample_k_shot(floats, 5, seed=0)) == 5


def test_k_shot_balance_exact_when_classes_are_large():
    rows = [{"label": i % 3} for i in range(300)]
    for k in (4, 16, 32, 100):
        counts = Counter(r["label"] for r in data.sample_k_shot(rows, k, seed=7))
        assert sorted(counts.values()) == sorted([k // 3 + (i < k % 3) for i in range(3)])


@needs_data
def test_load_splits_k_shot_is_the_first_k_of_the_seed42_shuffled_train_split(splits):
    """The authors' few-shot rows: the first k of the 90% train split shuffled with seed 42 -- one set of rows for
    every run seed; validation stays the whole held-out 10% split (not cut to k rows)."""
    dd = data.load_splits("rte", DATA_DIR, k_shot=16)
    full = splits["rte"]
    assert len(dd["train"]) == 16 and len(dd["test"]) == 277
    assert len(dd["validation"]) == len(full["validation"]) == 249
    order = np.random.default_rng(42).permutation(len(full["train"]))[:16]  # datasets' shuffle(seed=42)
    assert col(dd["train"], "group") == [full["train"][int(i)]["group"] for i in order]
    assert col(dd["train"], "group") == col(data.load_splits("rte", DATA_DIR, k_shot=16)["train"], "group")
    with pytest.raises(ValueError, match="larger than"):
        data.load_splits("cb", DATA_DIR, k_shot=10_000)


# ----------------------------- HumSet (synthetic fixture) and ReCoRD (synthetic official-format file)
def test_humset_fixture_multi_label_with_labels_from_data():
    dd = data.load_splits("sectors", FIXTURES)  # finds the humset/ subfolder
    assert {k: len(v) for k, v in dd.items()} == {"train": 12, "validation": 4, "test": 4}
    task = data.resolve_labels("sectors", FIXTURES / "humset")
    assert task.label_names == ("Agriculture", "Education", "Food Security", "Health", "Livelihoods",
                                "Protection", "Shelter", "WASH")
    assert task.num_labels == 8 and task.problem == "multi_label"
    first = dd["train"][0]
    assert first["text_b"] is None and first["text_a"].startswith("Synthetic note: flooding")
    assert first["label"] == [0, 0, 0, 1, 0, 0, 0, 1]  # Health, WASH
    empty = dd["train"][4]
    assert empty["label"] == [0] * 8  # an entry without sectors
    for name in ("pillars_1d", "subpillars_1d", "pillars_2d", "subpillars_2d"):
        resolved = data.resolve_labels(name, FIXTURES)
        assert list(resolved.label_names) == sorted(resolved.label_names) and resolved.num_labels >= 5
    assert data.summarize("subpillars_2d", FIXTURES)["num_labels"] == 5


def test_humset_csv_and_random_90_10_without_validation(tmp_path):
    rows = [json.loads(line) for line in (FIXTURES / "humset" / "train.jsonl").read_text("utf-8").splitlines()]
    cols = list(rows[0])
    for split, part in (("train", rows), ("test", rows[:3])):
        with open(tmp_path / f"{split}.csv", "w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=cols)
            writer.writeheader()
            writer.writerows({k: (str(v) if isinstance(v, list) else v) for k, v in r.items()} for r in part)
    raw = data.load_raw("pillars_1d", tmp_path)
    assert raw["train"][0]["pillars_1d"] == ["Shock/Event"] and raw["train"][6]["pillars_1d"] == []
    dd = data.load_splits("pillars_1d", tmp_path, seed=42)
    assert (len(dd["train"]), len(dd["validation"]), len(dd["test"])) == (10, 2, 3)
    assert col(dd["validation"], "group") == data.load_splits("pillars_1d", tmp_path)["validation"]["group"][:]


def test_humset_missing_folder_explains(tmp_path):
    with pytest.raises(FileNotFoundError, match="access-gated"):
        data.load_raw("sectors", tmp_path)


def _record_file(path: Path) -> None:
    """Two synthetic passages in the official ReCoRD jsonl format."""
    def passage(idx, text, ents, qas):
        spans = [{"start": text.index(e), "end": text.index(e) + len(e) - 1} for e in ents]
        return {"idx": idx, "passage": {"text": text, "entities": spans}, "qas": qas}
    records = [
        passage(0, "Paris hosted Alice.@highlight\nBob met Alice in Paris.", ["Paris", "Alice", "Bob"],
                [{"idx": 10, "query": "@placeholder met Alice.",
                  "answers": [{"start": 30, "end": 32, "text": "Bob"}]},
                 {"idx": 11, "query": "Alice was in @placeholder.",
                  "answers": [{"start": 0, "end": 4, "text": "Paris"}]}]),
        passage(1, "Rome and Oslo are cities.", ["Rome", "Oslo"],
                [{"idx": 12, "query": "@placeholder is in Norway.", "answers": [{"start": 9, "end": 12, "text": "Oslo"}]}]),
    ]
    path.mkdir(parents=True)
    for split in ("train", "val"):
        (path / f"{split}.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n", "utf-8")


def test_record_local_format_and_binary_rows(tmp_path):
    _record_file(tmp_path / "superglue" / "ReCoRD")
    raw = data.load_raw("record", tmp_path)
    first = raw["test"][0]
    assert first["entities"] == ["Paris", "Alice", "Bob"] and first["answers"] == ["Bob"]
    assert first["idx"] == {"passage": 0, "query": 10}
    rows = data.process_rows("record", raw["test"])
    assert len(rows) == 3 + 3 + 2
    assert rows[0]["text_a"] == "Paris hosted Alice.- Bob met Alice in Paris."
    assert [r["text_b"] for r in rows[:3]] == ["Paris met Alice.", "Alice met Alice.", "Bob met Alice."]
    assert [r["label"] for r in rows[:3]] == [0, 0, 1]
    assert {r["group"] for r in rows} == {10, 11, 12} and rows[0]["answers"] == ["Bob"]
    dd = data.load_splits("record", tmp_path)
    assert not set(col(dd["train"], "group")) & set(col(dd["validation"], "group"))
    assert len(dd["train"]) + len(dd["validation"]) == 8 and dd["test"].features["entity"].dtype == "string"


# ------------------------------------------------------------------------------------------ summaries
@needs_data
def test_task_table_covers_all_tasks_without_raising(monkeypatch):
    monkeypatch.setattr(data.locations, "hub_reachable", lambda: False)
    table = {row["name"]: row for row in data.task_table(DATA_DIR)}
    assert list(table) == list(TASKS)
    for name in ("mnli", "qqp", "record", "sectors"):
        assert table[name]["source"] == "unavailable offline" and table[name]["error"]
        assert table[name]["splits"] == {"train": 0, "validation": 0, "test": 0}
    assert table["rte"]["splits"] == {"train": 2241, "validation": 249, "test": 277}
    assert table["rte"]["source"] == str(DATA_DIR / "glue_data" / "RTE") and table["rte"]["metric"] == "accuracy"
    assert table["qnli"]["splits"] == {"train": 0, "validation": 0, "test": 5463} and table["qnli"]["note"]
    assert table["cb"]["num_labels"] == 3 and table["stsb"]["num_labels"] == 1
    assert table["sectors"]["num_labels"] is None


def test_a_classification_train_file_with_one_class_is_refused_naming_it(tmp_path):
    from scalearn_lite import cli

    real = DATA_DIR / "glue_data" / "RTE"
    if not real.is_dir():
        pytest.skip(f"real GLUE data not found at {real}")
    folder = tmp_path / "glue_data" / "RTE"
    folder.mkdir(parents=True)
    lines = (real / "train.tsv").read_text(encoding="utf-8").split("\n")
    kept = [lines[0]] + [l for l in lines[1:] if l.endswith("\tentailment")]
    (folder / "train.tsv").write_text("\n".join(kept) + "\n", encoding="utf-8")
    (folder / "dev.tsv").write_text((real / "dev.tsv").read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(ValueError, match=f"{folder / 'train.tsv'}: all {len(kept) - 1} training rows of 'rte' have "
                                         "the label 'entailment'; a classifier needs at least 2 classes"):
        data.load_splits("rte", tmp_path)
    assert cli.main(["train-source", "rte", "--preset", "tiny", "--data-dir", str(tmp_path), "--quiet",
                     "--out", str(tmp_path / "out")]) == 2
    assert not (tmp_path / "out").exists()


# -------------------------------------- a folder without a training file: refused before any training
def test_a_glue_folder_without_train_never_trains_on_its_test_split(data_dir, tmp_path, monkeypatch):
    glue_folder(tmp_path, data_dir, "RTE", files=("dev.tsv",))
    no_training(monkeypatch)
    want = re.escape(str(tmp_path / "glue_data" / "RTE" / "train.tsv"))
    with pytest.raises(ValueError, match=f"'rte' has no training file at {want}.*qnli, boolq"):
        sources.train_source("rte", TINY, data_dir=tmp_path, out=tmp_path / "out", progress=False)
    with pytest.raises(ValueError, match=f"no training file at {want}"):
        data.load_splits("rte", tmp_path, dev_as_train=True)
    assert not (tmp_path / "out").exists()
    glue_folder(tmp_path, data_dir, "MRPC")
    with pytest.raises(ValueError, match=f"no training file at {want}"):  # as a source of a transfer: before training
        tr.transfer("mrpc", ["rte"], "scalearn", TINY, data_dir=tmp_path, out=tmp_path / "run", progress=False)


# ---------------------------------------------- bad labels and malformed rows: named by file and line
def test_a_bad_label_names_file_line_and_expected_values(data_dir, tmp_path):
    folder = glue_folder(tmp_path, data_dir, "RTE", lines=6)
    lines = (folder / "train.tsv").read_text().split("\n")
    parts = lines[2].split("\t")
    lines[2] = "\t".join(parts[:-1] + ["maybe"])
    (folder / "train.tsv").write_text("\n".join(lines))
    path = re.escape(str(folder / "train.tsv"))
    with pytest.raises(ValueError, match=f"{path}, line 3: label 'maybe' is not one of entailment / not_entailment "
                                         r"\(or their ids 0..1\) \(task rte\)"):
        data.load_raw("rte", tmp_path, source="local")
    sst = glue_folder(tmp_path, data_dir, "SST-2", lines=5)
    text = (sst / "train.tsv").read_text().split("\n")
    text[3] = text[3].rsplit("\t", 1)[0] + "\t7"
    (sst / "train.tsv").write_text("\n".join(text))
    with pytest.raises(ValueError, match=r"SST-2/train.tsv, line 4: label '7' is not one of negative / positive"):
        data.load_raw("sst2", tmp_path, source="local")


def test_a_label_out_of_range_via_the_api_names_the_row():
    rows = [{"sentence": "fine", "label": 1, "idx": 0}, {"sentence": "odd", "label": 7, "idx": 1}]
    with pytest.raises(ValueError, match=r"task 'sst2', row 1: label 7 is not one of negative / positive"):
        data.to_dataset("sst2", data.process_rows("sst2", rows))
    with pytest.raises(ValueError, match="row 0: label nan is not one of a number"):
        data.process_rows("stsb", [{"sentence1": "a", "sentence2": "b", "label": float("nan"), "idx": 0}])


def test_malformed_rows_are_refused_by_line(data_dir, tmp_path):
    folder = glue_folder(tmp_path, data_dir, "RTE", lines=8)
    lines = (folder / "train.tsv").read_text().split("\n")
    lines[3] = lines[3].rsplit("\t", 1)[0]  # a row that lost its label column
    lines[5] = lines[5] + "\textra"
    (folder / "train.tsv").write_text("\n".join(lines))
    with pytest.raises(ValueError, match=r"train.tsv: line\(s\) 4, 6 do not have the 4 tab-separated fields"):
        data.load_raw("rte", tmp_path, source="local")


def test_superglue_bad_label_and_missing_field_name_the_line(data_dir, tmp_path):
    folder = tmp_path / "superglue" / "CB"
    folder.mkdir(parents=True)
    rows = [json.loads(l) for l in (data_dir / "superglue" / "CB" / "val.jsonl").read_text().splitlines()[:3]]
    shutil.copy(data_dir / "superglue" / "CB" / "train.jsonl", folder / "train.jsonl")
    rows[1]["label"] = "maybe"
    (folder / "val.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(ValueError, match=r"val.jsonl, line 2: label 'maybe' is not one of entailment / "
                                         r"contradiction / neutral"):
        data.load_raw("cb", tmp_path, source="local")
    del rows[1]["premise"]
    (folder / "val.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(ValueError, match=r"val.jsonl, line 2: missing field\(s\) \['premise'\]"):
        data.load_raw("cb", tmp_path, source="local")


def test_a_humset_folder_with_a_missing_column_names_file_and_line(tmp_path):
    fixture = Path(__file__).resolve().parent / "fixtures" / "humset"
    rows = [json.loads(l) for l in (fixture / "train.jsonl").read_text("utf-8").splitlines()]
    del rows[3]["sectors"]
    (tmp_path / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n", "utf-8")
    shutil.copy(fixture / "test.jsonl", tmp_path / "test.jsonl")
    with pytest.raises(ValueError, match=r"train.jsonl, line 4: missing HumSet column\(s\) \['sectors'\]"):
        data.load_splits("sectors", tmp_path)
    with open(tmp_path / "train.csv", "w", encoding="utf-8") as fh:
        fh.write("entry_id,excerpt,sectors\n1,flooding,\"['Health']\"\n2,no label column\n")
    (tmp_path / "train.jsonl").unlink()
    with pytest.raises(ValueError, match=r"train.csv, line 3: 3 columns in the header"):
        data.load_splits("sectors", tmp_path)
