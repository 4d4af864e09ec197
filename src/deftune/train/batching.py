"""Dynamic batching under a token budget (like fairseq's max_tokens).

Examples are sorted by length (ties broken at random each epoch) and packed greedily into micro-batches whose
padded size — examples × longest example — stays within the budget; the order of the batches is then shuffled.
Every example appears exactly once per epoch, padding stays small, and the number of examples per batch adapts
to their length. In data-parallel runs each rank takes every world_size-th batch.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

from torch.utils.data import Sampler

from ..config import TrainingConfig


def pack(lengths: list[int], order: list[int], max_tokens: int, *, padded: bool = True) -> list[list[int]]:
    """Greedy packing of indices (in the given order) into batches whose size — padded (examples × longest) or,
    for sequence packing, the plain sum of lengths — stays ≤ max_tokens. An example longer than the budget
    forms a batch alone."""
    batches: list[list[int]] = []
    batch: list[int] = []
    longest = total = 0
    for i in order:
        cost = max(longest, lengths[i]) * (len(batch) + 1) if padded else total + lengths[i]
        if batch and cost > max_tokens:
            batches.append(batch)
            batch, longest, total = [], 0, 0
        batch.append(i)
        longest, total = max(longest, lengths[i]), total + lengths[i]
    if batch:
        batches.append(batch)
    return batches


class TokenBudgetBatchSampler(Sampler[list[int]]):
    """Yields lists of example indices; a batch sampler for torch's DataLoader."""

    def __init__(
        self,
        lengths: list[int],
        max_tokens: int,
        *,
        seed: int = 0,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
        padded: bool = True,
    ):
        if max_tokens <= 0:
            raise ValueError("max_tokens must be positive")
        self.lengths = list(lengths)
        self.max_tokens, self.padded = max_tokens, padded
        self.seed, self.shuffle = seed, shuffle
        self.rank, self.world_size = rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batches(self, epoch: int | None = None) -> list[list[int]]:
        """All ranks' batches for an epoch, padded (by repeating the first ones) to a multiple of world_size."""
        rng = random.Random(self.seed + (self.epoch if epoch is None else epoch))
        tie_break = [rng.random() for _ in self.lengths] if self.shuffle else list(range(len(self.lengths)))
        order = sorted(range(len(self.lengths)), key=lambda i: (self.lengths[i], tie_break[i]))
        batches = pack(self.lengths, order, self.max_tokens, padded=self.padded)
        if self.shuffle:
            rng.shuffle(batches)
        remainder = len(batches) % self.world_size
        if remainder:
            batches += batches[: self.world_size - remainder]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches()[self.rank :: self.world_size])

    def __len__(self) -> int:
        # Sorted lengths are the same every epoch, so the number of batches is too.
        order = sorted(range(len(self.lengths)), key=self.lengths.__getitem__)
        n = len(pack(self.lengths, order, self.max_tokens, padded=self.padded))
        return -(-n // self.world_size)


def padding_share(lengths: list[int], batches: list[list[int]]) -> float:
    """Share of computed (padded) token positions that are padding."""
    computed = sum(max(lengths[i] for i in b) * len(b) for b in batches)
    return 1 - sum(lengths[i] for b in batches for i in b) / computed if computed else 0.0


def accumulation(t: TrainingConfig, tokens_per_micro: float, examples_per_micro: float, world_size: int = 1) -> int:
    """Micro-batches per optimizer step: enough to reach training.effective_batch_tokens or _examples over all
    ranks, else training.gradient_accumulation."""
    if t.effective_batch_tokens:
        steps = math.ceil(t.effective_batch_tokens / (tokens_per_micro * world_size))
    elif t.effective_batch_examples:
        steps = math.ceil(t.effective_batch_examples / (examples_per_micro * world_size))
    else:
        steps = t.gradient_accumulation
    return max(1, steps)


@dataclass
class BatchPlan:
    """How the training data is cut into micro-batches and optimizer steps on each rank."""

    micro_batches: int  # per epoch and rank
    examples_per_micro: float
    tokens_per_micro: float  # computed (padded) tokens
    accumulation: int

    @classmethod
    def of(cls, t: TrainingConfig, lengths: list[int], world_size: int) -> BatchPlan:
        if t.batching == "token_budget":
            batches = TokenBudgetBatchSampler(
                lengths, t.max_tokens, world_size=world_size, padded=not t.packing
            ).batches(0)
        else:
            batches = [
                list(range(i, min(i + t.batch_size, len(lengths)))) for i in range(0, len(lengths), t.batch_size)
            ]
        tokens = sum(sum(lengths[i] for i in b) if t.packing else max(lengths[i] for i in b) * len(b) for b in batches)
        per_micro_examples, per_micro_tokens = len(lengths) / len(batches), tokens / len(batches)
        return cls(
            math.ceil(len(batches) / world_size),
            per_micro_examples,
            per_micro_tokens,
            accumulation(t, per_micro_tokens, per_micro_examples, world_size),
        )

    def optimizer_steps(self, t: TrainingConfig) -> int:
        if t.max_steps > 0:
            return t.max_steps
        return max(1, math.ceil(t.epochs * self.micro_batches / self.accumulation))
