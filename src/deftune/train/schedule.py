"""Learning-rate schedules: warmup → stable → decay (WSD, the default), cosine and linear, with phase names.

WSD's decay can start at any step, so a time budget can end a run early and still finish with a full decay:
`LearningRate.end_at` moves the end of a WSD schedule forward while it is in its stable phase."""

from __future__ import annotations

from dataclasses import dataclass

from torch.optim.lr_scheduler import LambdaLR
from transformers.optimization import (
    _get_cosine_schedule_with_warmup_lr_lambda,
    _get_linear_schedule_with_warmup_lr_lambda,
    _get_wsd_scheduler_lambda,
)

from ..config import TrainingConfig


@dataclass(frozen=True)
class Phases:
    """Step boundaries of a schedule: warmup is [0, warmup), decay is [total - decay, total)."""

    warmup: int
    decay: int
    total: int

    @classmethod
    def of(cls, cfg: TrainingConfig, total: int) -> Phases:
        warmup = round(cfg.warmup * total)
        decay = round(cfg.decay * total) if cfg.schedule == "wsd" else total - warmup
        return cls(warmup, min(decay, total - warmup), total)

    def phase(self, step: int) -> str:
        """Phase of the update made at 0-based `step`."""
        if step < self.warmup:
            return "warmup"
        return "decay" if step >= self.total - self.decay else "stable"


class LearningRate:
    """The learning-rate factor per step (a LambdaLR function), computed by transformers' own schedule functions.
    Its state is plain numbers, so it is saved and restored with the scheduler's checkpoint (a moved end too)."""

    def __init__(self, cfg: TrainingConfig, total: int):
        self.schedule, self.decay_shape, self.min_lr_ratio = cfg.schedule, cfg.decay_shape, cfg.min_lr_ratio
        phases = Phases.of(cfg, total)
        self.warmup, self.decay, self.total = phases.warmup, phases.decay, phases.total

    @property
    def phases(self) -> Phases:
        return Phases(self.warmup, self.decay, self.total)

    def __call__(self, step: int) -> float:
        if self.schedule == "wsd":
            return _get_wsd_scheduler_lambda(
                step,
                num_warmup_steps=self.warmup,
                num_stable_steps=self.total - self.warmup - self.decay,
                num_decay_steps=self.decay,
                warmup_type="linear",
                decay_type=self.decay_shape,
                min_lr_ratio=self.min_lr_ratio,
                num_cycles=0.5,
            )
        if self.schedule == "cosine":
            return _get_cosine_schedule_with_warmup_lr_lambda(
                step, num_warmup_steps=self.warmup, num_training_steps=self.total, num_cycles=0.5
            )
        return _get_linear_schedule_with_warmup_lr_lambda(
            step, num_warmup_steps=self.warmup, num_training_steps=self.total
        )

    def end_at(self, step: int, end: int) -> None:
        """End a WSD schedule at `end` (< total), decaying from `step` on; only from the stable phase."""
        if self.schedule != "wsd" or self.phases.phase(step) != "stable" or not step < end < self.total:
            raise ValueError(f"cannot move the end of a {self.schedule} schedule to {end} at step {step}")
        self.decay, self.total = end - step, end


def create(optimizer, cfg: TrainingConfig, total: int) -> LambdaLR:
    """A LambdaLR over `total` optimizer steps; its `lr_lambdas[0]` is the LearningRate."""
    return LambdaLR(optimizer, LearningRate(cfg, total))


def learning_rate(scheduler) -> LearningRate | None:
    """The LearningRate inside a scheduler made by `create` (None for any other)."""
    found = getattr(scheduler, "lr_lambdas", [None])[0]
    return found if isinstance(found, LearningRate) else None
