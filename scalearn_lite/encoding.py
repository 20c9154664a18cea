"""Tokenisation and dynamic-padding batches for every problem type of the task registry."""
from __future__ import annotations

from typing import TYPE_CHECKING, Dict, List, Optional, Sequence

import torch
from torch.utils.data import DataLoader

if TYPE_CHECKING:
    from .config import Preset
    from .tasks import Task


def _pairs(tokenizer, a: List[str], b: Optional[List[Optional[str]]], max_length: int) -> List[dict]:
    if b is None or all(x is None for x in b):
        enc = tokenizer(list(a), truncation=True, max_length=max_length)
    else:
        enc = tokenizer(list(a), [x or "" for x in b], truncation="longest_first", max_length=max_length)
    keys = [k for k in ("input_ids", "token_type_ids", "attention_mask") if k in enc]
    return [{k: enc[k][i] for k in keys} for i in range(len(a))]


def encode(task, rows, tokenizer, max_length: int = 128) -> List[dict]:
    """Processed rows (text_a, text_b, label, ...) → features: token id lists (per choice for multiple choice) + label."""
    rows = list(rows)
    if not rows:
        return []
    if task.problem == "multiple_choice":
        num_choices = len(rows[0]["choices_a"]) if rows else 0
        per_choice = [_pairs(tokenizer, [r["choices_a"][c] for r in rows], [r["choices_b"][c] for r in rows],
                             max_length) for c in range(num_choices)]
        feats = [{k: [per_choice[c][i][k] for c in range(num_choices)] for k in per_choice[0][i]}
                 for i in range(len(rows))]
    else:
        feats = _pairs(tokenizer, [r["text_a"] for r in rows], [r.get("text_b") for r in rows], max_length)
    for i, (f, r) in enumerate(zip(feats, rows)):
        f["label"] = r["label"]
        f["group"] = r.get("group", i)  # kept for grouped metrics (MultiRC, ReCoRD); not batched
        for key in ("entity", "answers"):  # ReCoRD: the candidate and the gold answers of its query
            if key in r:
                f[key] = r[key]
    return feats


def _pad(seqs: Sequence[Sequence[int]], value: int) -> torch.Tensor:
    width = max(len(s) for s in seqs)
    return torch.tensor([list(s) + [value] * (width - len(s)) for s in seqs], dtype=torch.long)  # (B, T)


class Collator:
    """Pads each batch to its own longest sequence; multiple choice gives (B, C, T) tensors."""

    def __init__(self, pad_token_id: int, problem: str):
        self.pad_token_id, self.problem = pad_token_id, problem

    def __call__(self, feats: List[dict]) -> Dict[str, torch.Tensor]:
        batch = {}
        for key in ("input_ids", "token_type_ids", "attention_mask"):
            if key not in feats[0]:
                continue
            value = self.pad_token_id if key == "input_ids" else 0
            if self.problem == "multiple_choice":
                flat = [seq for f in feats for seq in f[key]]
                batch[key] = _pad(flat, value).view(len(feats), len(feats[0][key]), -1)  # (B, C, T)
            else:
                batch[key] = _pad([f[key] for f in feats], value)  # (B, T)
        labels = [f["label"] for f in feats]
        if self.problem == "regression":
            batch["labels"] = torch.tensor(labels, dtype=torch.float)
        elif self.problem == "multi_label":
            batch["labels"] = torch.tensor(labels, dtype=torch.float)  # (B, num_labels) multi-hot
        else:
            batch["labels"] = torch.tensor(labels, dtype=torch.long)
        return batch


def token_length(f: dict) -> int:
    ids = f["input_ids"]
    return max(len(x) for x in ids) if ids and isinstance(ids[0], list) else len(ids)


class LengthGroupedSampler(torch.utils.data.Sampler):
    """Random batches of similar length (less padding, same data): shuffle, sort within windows of
    50 batches by length, cut into batches, shuffle the batches. A new order every epoch."""

    def __init__(self, lengths: List[int], batch_size: int, seed: int = 0, window: int = 50):
        self.lengths, self.batch_size, self.window = lengths, batch_size, window
        self.generator = torch.Generator().manual_seed(seed)

    def __iter__(self):
        order = torch.randperm(len(self.lengths), generator=self.generator).tolist()
        size = self.batch_size * self.window
        chunks = [sorted(order[i:i + size], key=lambda j: -self.lengths[j]) for i in range(0, len(order), size)]
        batches = [c[i:i + self.batch_size] for c in chunks for i in range(0, len(c), self.batch_size)]
        for b in torch.randperm(len(batches), generator=self.generator).tolist():
            yield batches[b]

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)


def make_loader(feats: List[dict], task, tokenizer, batch_size: int, shuffle: bool = False,
                seed: int = 0) -> DataLoader:
    """A DataLoader with dynamic padding; training batches are shuffled and grouped by length (seeded)."""
    collate = Collator(tokenizer.pad_token_id or 0, task.problem)
    if not shuffle:
        return DataLoader(feats, batch_size=batch_size, shuffle=False, collate_fn=collate)
    sampler = LengthGroupedSampler([token_length(f) for f in feats], batch_size, seed)
    return DataLoader(feats, batch_sampler=sampler, collate_fn=collate)


def encode_splits(task: Task, rows: Dict[str, list], tokenizer, preset: Preset) -> Dict[str, list]:
    """Token features per split (the preset's max length for this task: MultiRC 324 in the paper preset)."""
    return {k: encode(task, v, tokenizer, preset.length_for(task.name)) for k, v in rows.items()}
