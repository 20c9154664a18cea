"""The baselines beside ScaLearn: AdapterSoup's source choice and its weight average (AdapterFusion runs through
transfer: its tests are in test_transfer.py)."""
import torch


def test_adaptersoup_ranks_sources_by_sentence_similarity_and_weights_sum_to_one():
    from scalearn_lite import baselines

    target = ["the movie was wonderful", "a dull and boring film"]
    ranking = baselines.rank_by_similarity(target, {
        "numbers": ["3 + 4 = 7", "12 * 12 = 144"], "same": list(target), "films": ["a great film", "bad acting"]})
    assert [name for name, _ in ranking] == ["same", "films", "numbers"]
    # the similarity is the mean pairwise cosine of mean-pooled sentence embeddings, recomputed pair by pair
    model, tok = baselines.sentence_encoder()
    def emb(text):
        enc = tok([text], return_tensors="pt")
        with torch.no_grad():
            return model(**enc).last_hidden_state.mean(1)[0]
    pairs = [float(torch.cosine_similarity(emb(a), emb(b), dim=0)) for a in target for b in target]
    assert abs(dict(ranking)["same"] - sum(pairs) / len(pairs)) < 1e-5
    chosen = baselines.soup_selection(ranking, 2)
    assert [n for n, _ in chosen] == ["same", "films"] and abs(sum(w for _, w in chosen) - 1) < 1e-9
    assert chosen[0][1] > chosen[1][1]  # weights follow the similarity order
    assert [w for _, w in baselines.soup_selection(ranking, 2, "uniform")] == [0.5, 0.5]


def test_soup_weights_is_the_weighted_parameter_average():
    from scalearn_lite.baselines import soup_weights
    from scalearn_lite.scaling import AdapterWeights

    g = torch.Generator().manual_seed(0)
    make = lambda: [AdapterWeights(*(torch.randn(*s, generator=g) for s in [(3, 4), (3,), (4, 3), (4,)]))]
    a, b = make(), make()
    mixed = soup_weights([a, b], [0.25, 0.75])[0]
    assert torch.allclose(mixed.up_weight, 0.25 * a[0].up_weight + 0.75 * b[0].up_weight)
    assert torch.allclose(mixed.down_bias, 0.25 * a[0].down_bias + 0.75 * b[0].down_bias)
