import random

import pytest

from deftune.train.batching import TokenBudgetBatchSampler, pack, padding_share


@pytest.fixture
def lengths():
    rng = random.Random(0)
    return [rng.randint(20, 300) for _ in range(500)]


def test_batches_respect_the_budget_and_cover_every_example_once(lengths):
    sampler = TokenBudgetBatchSampler(lengths, max_tokens=1024, seed=1)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert all(max(lengths[i] for i in b) * len(b) <= 1024 for b in batches)
        assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
        assert len(batches) == len(sampler)


def test_batch_size_adapts_to_length_and_padding_is_small(lengths):
    batches = TokenBudgetBatchSampler(lengths, max_tokens=2048, seed=1).batches()
    short = min(batches, key=lambda b: max(lengths[i] for i in b))
    long = max(batches, key=lambda b: max(lengths[i] for i in b))
    assert len(short) > 4 * len(long)
    assert padding_share(lengths, batches) < 0.05
    rng = random.Random(0)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    fixed = [order[i : i + 8] for i in range(0, len(order), 8)]
    assert padding_share(lengths, fixed) > 0.25  # what length-blind batches of 8 waste on the same data


def test_epochs_shuffle_batches_and_compositions_reproducibly(lengths):
    a = TokenBudgetBatchSampler(lengths, max_tokens=1024, seed=3)
    b = TokenBudgetBatchSampler(lengths, max_tokens=1024, seed=3)
    assert a.batches(0) == b.batches(0)
    assert a.batches(0) != a.batches(1)
    assert TokenBudgetBatchSampler(lengths, max_tokens=1024, seed=4).batches(0) != a.batches(0)


def test_an_example_longer_than_the_budget_is_alone():
    assert pack([10, 500, 10], [0, 2, 1], max_tokens=100) == [[0, 2], [1]]


def test_ranks_get_disjoint_batches_of_equal_number(lengths):
    ranks = [TokenBudgetBatchSampler(lengths, max_tokens=1024, seed=5, rank=r, world_size=3) for r in range(3)]
    per_rank = [list(s) for s in ranks]
    assert len({len(b) for b in per_rank}) == 1 and len(per_rank[0]) == len(ranks[0])
    seen = [i for batches in per_rank for b in batches for i in b]
    assert set(seen) == set(range(len(lengths)))
    n_batches = len(ranks[0].batches())
    assert n_batches % 3 == 0 and sum(map(len, per_rank)) == n_batches
