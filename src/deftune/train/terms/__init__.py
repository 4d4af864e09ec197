"""Extra terms of the training loss. Each owns its parameters (and their optimizer group), computes its term
from the model and the micro-batch the trainer just ran, logs its own figures and saves and restores its state
with the trainer's checkpoints. The trainer adds every term's value, scaled for gradient accumulation."""

from __future__ import annotations

from pathlib import Path

import torch


class LossTerm:
    """The interface the trainer calls; the defaults do nothing."""

    def loss(self, model, inputs: dict) -> torch.Tensor:
        raise NotImplementedError

    def parameter_groups(self) -> list[dict]:
        """Optimizer groups of the term's own parameters (with their learning rate and decay)."""
        return []

    def undecayed(self) -> set[int]:
        """Ids of model parameters the term regularises itself, so ordinary weight decay leaves them alone."""
        return set()

    def logs(self, step: int) -> dict:
        """Figures for the log line of `step` (the window since the last call)."""
        return {}

    def save(self, folder: Path) -> None:
        """Write the term's state into a checkpoint folder."""

    def restore(self, folder: Path) -> None:
        """Read the state `save` wrote."""
