"""The composite validation score that early stopping watches: validation loss, a task metric from generation,
and (when given) the retention drop versus the base model, each weighted, higher is better."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import f1_score

from ..config import EarlyStoppingConfig, EvaluationConfig
from ..core.benchmarks import choices, load_benchmark
from ..core.inference import DecodingSettings, generate, parse_label
from ..data import seeded_subset
from ..data.records import Record
from ..data.render import Renderer

INVALID = "<invalid>"  # an answer naming no label (or several): a miss for every class


def reference(record: Record) -> str:
    """The answer a record expects: its label, completion or last assistant turn."""
    if record.format == "classification":
        return record.label
    if record.format == "completion":
        return record.completion
    return next(m["content"] for m in reversed(record.messages) if m["role"] == "assistant")


def task_metric(model, renderer: Renderer, records: list[Record], batch_size: int = 16) -> tuple[str, float] | None:
    """Macro-F1 over the label set for classification, exact match otherwise; None for plain text records."""
    records = [r for r in records if r.format != "text"]
    if not records:
        return None
    classification = records[0].format == "classification"
    settings = DecodingSettings(max_new_tokens=16 if classification else 128, batch_size=batch_size)
    answers = generate(model, renderer.tokenizer, [renderer.prompt_text(r) for r in records], settings)
    truth = [reference(r) for r in records]
    if classification:
        predicted = [parse_label(a, renderer.labels) or INVALID for a in answers]
        return "macro_f1", float(f1_score(truth, predicted, labels=renderer.labels, average="macro", zero_division=0))
    return "exact_match", sum(a.strip() == t.strip() for a, t in zip(answers, truth)) / len(records)


@dataclass
class Composite:
    """score = loss_weight·(−loss) + task_weight·task + retention_weight·(−retention drop)."""

    cfg: EarlyStoppingConfig
    retention_drop: Callable[[object], float] | None = None  # model -> drop versus base (the evaluation stage)

    def weights(self) -> dict[str, float]:
        return {
            "loss": self.cfg.loss_weight,
            "task": self.cfg.task_weight,
            "retention": self.cfg.retention_weight if self.retention_drop else 0.0,
        }

    def terms(self, model, loss: float, renderer: Renderer, records: list[Record]) -> dict[str, float]:
        """The validation terms measured now (only those with a weight), plus the composite score."""
        weights = self.weights()
        terms: dict[str, float] = {"loss": loss}
        score = -weights["loss"] * loss
        if weights["task"] and records:
            measured = task_metric(model, renderer, records)
            if measured:
                terms[measured[0]] = measured[1]
                score += weights["task"] * measured[1]
        if weights["retention"]:
            terms["retention_drop"] = self.retention_drop(model)
            score -= weights["retention"] * terms["retention_drop"]
        terms["composite"] = score
        return terms


def drop_tracker(model, tokenizer, cfg: EvaluationConfig, questions: int, seed: int) -> Callable[[object], float]:
    """Measure the (base) model's pooled accuracy on `questions` seeded questions of each of
    cfg.retention_benchmarks now; return model -> accuracy drop since (a share, positive = forgot)."""
    picked = [q for name in cfg.retention_benchmarks for q in seeded_subset(load_benchmark(name)[0], questions, seed)]
    answers = np.array([q.answer for q in picked])

    def accuracy(m) -> float:
        return float((choices(m, tokenizer, picked, batch_size=cfg.batch_size) == answers).mean()) if picked else 0.0

    base = accuracy(model)
    return lambda m: base - accuracy(m)
