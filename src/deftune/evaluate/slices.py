"""Slices of the evaluation records: values of `meta` fields (topic, question type, source, ...), the data audit's
topics (NMF over TF-IDF, fitted on the training and evaluation texts together) and input-length buckets. Each slice is reported with its size, the task score with an interval, and its error categories; the
worst slices come first."""

from __future__ import annotations

from collections import Counter

import numpy as np

from ..config import AuditConfig
from ..core import bootstrap
from ..core.topics import fit_topics
from ..data.records import Record, content
from .errors import Prediction

MAX_VALUES = 50  # a meta field with more distinct values (ids, free text) is not sliced by default


def meta_fields(records: list[Record], wanted: list[str] | None) -> list[str]:
    """The meta fields to slice by: those asked for, else every field with 2 to MAX_VALUES distinct values."""
    if wanted is not None:
        return wanted
    values: dict[str, set] = {}
    for record in records:
        for key, value in record.meta.items():
            values.setdefault(key, set()).add(str(value))
    return sorted(k for k, v in values.items() if 2 <= len(v) <= MAX_VALUES)


def length_buckets(lengths: list[int], buckets: int) -> list[str]:
    """Each input's token-count bucket, e.g. '41-80 tokens' (quantile edges; ties keep buckets whole)."""
    edges = np.unique(np.quantile(lengths, np.linspace(0, 1, buckets + 1)).round().astype(int))
    if len(edges) == 1:
        return [f"{edges[0]} tokens"] * len(lengths)
    names = []
    for n in lengths:
        b = int(np.searchsorted(edges[1:-1], n, side="left"))
        names.append(f"{edges[b] + (1 if b else 0)}-{edges[b + 1]} tokens")
    return names


def audit_topics(train: list[Record], records: list[Record], cfg: AuditConfig, seed: int) -> tuple[list, list] | None:
    """The audit's topic name of each training and each evaluation record (None when too few words for topics)."""
    fitted = fit_topics([content(r) for r in train + records], cfg, seed)
    if isinstance(fitted, str):
        return None
    names = [fitted.name(t) for t in fitted.assigned]
    return names[: len(train)], names[len(train) :]


def assign(
    records: list[Record],
    input_tokens: list[int],
    fields: list[str],
    buckets: int,
    topics: list[str | None] | None = None,
) -> dict[str, list]:
    """Slice field -> per-record value (None where a record lacks the field)."""
    table = {
        f"meta.{name}": [None if r.meta.get(name) is None else str(r.meta[name]) for r in records] for name in fields
    }
    if topics is not None:
        table["audit.topic"] = topics
    table["input_length"] = length_buckets(input_tokens, buckets)
    return table


def report(
    predictions: list[Prediction],
    table: dict[str, list],
    *,
    resamples: int,
    confidence: float,
    seed: int,
    max_ids: int = 10,
) -> list[dict]:
    """Every slice with n, the mean task score and its interval, and error-category counts, worst first."""
    scores = np.array([p.score for p in predictions])
    found = []
    for name, values in table.items():
        for value in sorted({v for v in values if v is not None}):
            inside = [i for i, v in enumerate(values) if v == value]
            errors = [predictions[i] for i in inside if predictions[i].is_error]
            found.append(
                {
                    "field": name,
                    "value": value,
                    "n": len(inside),
                    "score": bootstrap.interval(
                        bootstrap.mean_metric("score", scores[inside]),
                        resamples=resamples,
                        confidence=confidence,
                        seed=seed,
                    ),
                    "errors": dict(Counter(c for p in errors for c in p.categories)),
                    "error_ids": [p.id for p in errors[:max_ids]],
                }
            )
    return sorted(found, key=lambda s: (s["score"]["value"], -s["n"]))
