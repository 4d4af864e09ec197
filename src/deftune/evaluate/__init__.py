"""Evaluation: generation, task metrics with intervals and paired tests, error analysis, stress suites and
retention. `evaluate(target, ...)` runs it all for a run folder (base vs fine-tuned) or a model spec."""

from .runner import EvalResult, evaluate

__all__ = ["EvalResult", "evaluate"]
