"""Learning-rate schedules: warmup → stable → decay (WSD, the default), cosine and linear, with phase names."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import TrainingConfig


@dataclass(frozen=True)
class Phases:
    """Step boundaries of a schedule: warmup is [0, warmup), decay is [total - decay, total)."""
    warmup: int
    decay: int
    total: int

    @classmethod
    def of(cls, cfg: TrainingConfig, total: int) -> "Phases":
        warmup = round(cfg.warmup * total)
        decay = round(cfg.decay * total) if cfg.schedule == "wsd" else total - warmup
        return cls(warmup, min(decay, total - warmup), total)

    def phase(self, step: int) -> str:
        """Phase of the update made at 0-based `step`."""
        if step < self.warmup:
            return "warmup"
        return "decay" if step >= self.total - self.decay else "stable"


def create(optimizer, cfg: TrainingConfig, total: int):
    """A LambdaLR for `total` optimizer steps, from transformers' schedule functions."""
    from transformers.optimization import get_cosine_schedule_with_warmup, get_linear_schedule_with_warmup, \
        get_wsd_schedule

    phases = Phases.of(cfg, total)
    if cfg.schedule == "wsd":
        return get_wsd_schedule(optimizer, num_warmup_steps=phases.warmup, num_decay_steps=phases.decay,
                                num_training_steps=total, decay_type=cfg.decay_shape, min_lr_ratio=cfg.min_lr_ratio)
    make = get_cosine_schedule_with_warmup if cfg.schedule == "cosine" else get_linear_schedule_with_warmup
    return make(optimizer, num_warmup_steps=phases.warmup, num_training_steps=total)
