"""Tokenisation and dynamic-padding batches."""
import numpy as np

from scalearn_lite.encoding import LengthGroupedSampler


def test_length_grouped_batches_cover_every_row_once_per_epoch():
    lengths = list(np.random.default_rng(0).integers(1, 100, 203))
    sampler = LengthGroupedSampler(lengths, batch_size=8, seed=0, window=4)
    epoch1, epoch2 = list(sampler), list(sampler)
    assert len(epoch1) == len(sampler) == 26
    assert sorted(i for b in epoch1 for i in b) == list(range(203))
    assert epoch1 != epoch2  # reshuffled each epoch
    spread = np.mean([max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in epoch1])
    assert spread < 30  # random batches of 8 from U(1, 100) would spread ~75
