"""Safety: content screens (input and output), personal-data redaction, `Guard` around generation, bias
benchmarks, balanced data, adversarial debiasing and preference tuning (DPO)."""

from __future__ import annotations

from .screen import Screen, Verdict

__all__ = ["Guard", "Screen", "Verdict"]


def __getattr__(name: str):
    if name == "Guard":  # imports the generation code only when asked for
        from .guard import Guard

        return Guard
    raise AttributeError(name)
