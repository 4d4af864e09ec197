"""What a caller adds to one training run — a sweep's pruning and shared retention measure, a test's probe —
as one object, instead of keywords threaded through the recipe."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Hooks:
    callbacks: list = field(default_factory=list)  # transformers TrainerCallbacks, run with deftune's own
    # model -> retention drop versus the base model, measured once and shared (a sweep's trials); without it, a
    # positive training.early_stopping.retention_weight measures the base model at the start of the run
    retention_drop: Callable[[object], float] | None = None

    def abandoned(self) -> bool:
        """Whether a callback gave the run up (a pruned sweep trial): its final evaluation and save are skipped."""
        return any(getattr(c, "abandoned", False) for c in self.callbacks)
