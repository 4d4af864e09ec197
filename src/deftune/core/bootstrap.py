"""Confidence intervals and paired significance tests by resampling examples.

A metric is given as per-example rows of sufficient statistics and a function that scores any set of rows (the
mean of 0/1 correctness flags, scikit-learn's F1 over (gold, predicted) codes, sacrebleu's score of summed n-gram
counts). Resampling rows gives percentile bootstrap intervals; resampling the rows of two systems together gives
paired differences; swapping rows between systems gives the approximate-randomisation test (Noreen 1989; Riezler &
Maxwell 2005), the test sacrebleu runs for its metrics."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Score = Callable[[np.ndarray], float]


@dataclass(frozen=True)
class Metric:
    """One metric of one system: `score(rows)` on all rows is the point estimate."""

    name: str
    rows: np.ndarray  # (n_examples, k) sufficient statistics
    score: Score
    unit: str  # "share" (0-1) or "points" (0-100)

    @property
    def value(self) -> float:
        return float(self.score(self.rows)) if len(self.rows) else float("nan")


def _rows(values) -> np.ndarray:
    rows = np.asarray(values, dtype=float)
    return rows[:, None] if rows.ndim == 1 else rows


def mean_metric(name: str, values, unit: str = "share") -> Metric:
    """A metric that is the average of a per-example value (accuracy, exact match, token F1, ...)."""
    return Metric(name, _rows(values), lambda rows: float(rows[:, 0].mean()), unit)


def _indices(n: int, resamples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def _percentiles(values: np.ndarray, confidence: float) -> tuple[float, float]:
    values = values[~np.isnan(values)]
    if not len(values):
        return float("nan"), float("nan")
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def interval(metric: Metric, *, resamples: int, confidence: float, seed: int) -> dict:
    """The metric with its percentile bootstrap interval: {value, low, high, n, unit, confidence}."""
    n = len(metric.rows)
    result = {
        "value": metric.value,
        "low": float("nan"),
        "high": float("nan"),
        "n": n,
        "unit": metric.unit,
        "confidence": confidence,
    }
    if n:
        samples = np.array([metric.score(metric.rows[idx]) for idx in _indices(n, resamples, seed)])
        result["low"], result["high"] = _percentiles(samples, confidence)
    return result


def paired(base: Metric, tuned: Metric, *, resamples: int, confidence: float, seed: int) -> dict:
    """The difference tuned - base with a paired bootstrap interval, and the two-sided approximate-randomisation
    p-value: the share of random per-example swaps between the systems whose absolute difference is at least the
    observed one ((count + 1) / (trials + 1))."""
    if base.rows.shape != tuned.rows.shape:
        raise ValueError(f"{base.name}: paired systems need rows for the same examples")
    n = len(base.rows)
    observed = tuned.value - base.value
    result = {
        "difference": observed,
        "low": float("nan"),
        "high": float("nan"),
        "p_value": float("nan"),
        "n": n,
        "unit": base.unit,
        "confidence": confidence,
        "test": "paired approximate randomisation",
        "trials": resamples,
    }
    if not n:
        return result
    score = base.score
    diffs = np.array([score(tuned.rows[idx]) - score(base.rows[idx]) for idx in _indices(n, resamples, seed)])
    result["low"], result["high"] = _percentiles(diffs, confidence)
    swaps = np.random.default_rng(seed + 1).integers(0, 2, size=(resamples, n)).astype(bool)
    shuffled = np.array(
        [
            abs(score(np.where(s[:, None], tuned.rows, base.rows)) - score(np.where(s[:, None], base.rows, tuned.rows)))
            for s in swaps
        ]
    )
    result["p_value"] = float((np.sum(shuffled >= abs(observed) - 1e-12) + 1) / (resamples + 1))
    return result
