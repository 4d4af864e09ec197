"""Structured error analysis: every wrong answer gets categories assigned automatically, counts come with example
ids, a seeded sample is exported for human review (CSV and JSONL), and reviewers' labels are imported back with
their agreement (Cohen's kappa per pair of reviewers, Krippendorff's alpha, as the data audit computes them)."""

from __future__ import annotations

import csv
import random
import re
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..core.files import csv_rows, jsonl_rows, write_jsonl
from ..data.audit.agreement import (
    krippendorff_alpha,
    pairwise_cohen,
    ratings,
    value_counts,
)
from ..errors import DataError

CATEGORIES = (
    "wrong_label",
    "invalid_format",
    "empty",
    "repetition",
    "refusal",
    "over_long",
    "truncated_input",
    "low_overlap",
)
REVIEW_LABELS = CATEGORIES + ("not_an_error", "other")
REFUSAL = re.compile(
    r"\b(i can ?not|i can't|i won't|i will not|i(?:'m| am) (?:sorry|unable|not able)|as an ai\b|"
    r"i do(?: not|n't) (?:know|have enough))",
    re.IGNORECASE,
)
PASS_SCORE = 0.5  # a generated answer with token F1 below this is an error


@dataclass
class Prediction:
    """One model's answer to one evaluation record, with what the analysis needs."""

    id: str
    reference: str  # the gold label, or the reference answer
    answer: str  # the generated text
    tokens: int  # generated tokens
    finished: bool  # stopped by itself rather than at max_new_tokens
    input_tokens: int
    input_truncated: bool  # the renderer cut the input to data.max_input_tokens
    score: float = 0.0  # 1/0 correct for classification, token F1 for generation
    label: str | None = None  # the label parsed from the answer (classification)
    probabilities: dict[str, float] | None = None  # label probabilities from log-likelihood scoring
    categories: list[str] = field(default_factory=list)

    @property
    def is_error(self) -> bool:
        return self.score < PASS_SCORE

    def to_json(self) -> dict:
        return asdict(self)


def repetitive(text: str) -> bool:
    """Degenerate output: a word four times in a row, or under half of the word trigrams distinct."""
    words = text.lower().split()
    if any(len(set(words[i : i + 4])) == 1 for i in range(len(words) - 3)):
        return True
    trigrams = list(zip(words, words[1:], words[2:]))
    return len(trigrams) >= 6 and len(set(trigrams)) < 0.5 * len(trigrams)


def categorize(p: Prediction, *, classification: bool, overlong_ratio: float) -> list[str]:
    """The error categories of a wrong answer (none for a right one)."""
    if not p.is_error:
        return []
    found = []
    if not p.answer.strip():
        found.append("empty")
    elif classification:
        found.append("wrong_label" if p.label is not None else "invalid_format")
    if repetitive(p.answer):
        found.append("repetition")
    if REFUSAL.search(p.answer):
        found.append("refusal")
    if not p.finished or len(p.answer.split()) > overlong_ratio * max(len(p.reference.split()), 1):
        found.append("over_long")
    if p.input_truncated:
        found.append("truncated_input")
    return found or ["low_overlap"]


def summarize(predictions: list[Prediction], *, max_ids: int = 20) -> dict:
    """Counts per category with example ids, and the confusion pairs (gold → predicted) of wrong labels."""
    by_category: dict[str, list[str]] = defaultdict(list)
    pairs: dict[str, list[str]] = defaultdict(list)
    for p in predictions:
        for category in p.categories:
            by_category[category].append(p.id)
        if "wrong_label" in p.categories:
            pairs[f"{p.reference} → {p.label}"].append(p.id)
    errors = sum(p.is_error for p in predictions)
    return {
        "errors": errors,
        "examples": len(predictions),
        "unit": "examples",
        "categories": {
            c: {"count": len(by_category[c]), "ids": by_category[c][:max_ids]} for c in CATEGORIES if by_category[c]
        },
        "confusion_pairs": [
            {"pair": k, "count": len(v), "ids": v[:max_ids]}
            for k, v in sorted(pairs.items(), key=lambda kv: -len(kv[1]))
        ],
    }


REVIEW_FIELDS = ("id", "input", "reference", "answer", "auto_categories", "reviewer", "label", "notes")


def export_review(
    predictions: list[Prediction], inputs: dict[str, str], out_dir: Path, *, n: int, seed: int
) -> list[str]:
    """Write a seeded sample of errors to review.csv and review.jsonl (reviewers fill in `reviewer`, `label` (one of
    REVIEW_LABELS) and `notes`); returns the files written."""
    errors = [p for p in predictions if p.is_error]
    sample = sorted(random.Random(seed).sample(errors, min(n, len(errors))), key=lambda p: p.id)
    rows = [
        {
            "id": p.id,
            "input": inputs[p.id],
            "reference": p.reference,
            "answer": p.answer,
            "auto_categories": " ".join(p.categories),
            "reviewer": "",
            "label": "",
            "notes": "",
        }
        for p in sample
    ]
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / "review.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=REVIEW_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    write_jsonl(out_dir / "review.jsonl", rows)
    return [str(out_dir / "review.csv"), str(out_dir / "review.jsonl")]


def _review_rows(path: Path):
    return csv_rows(path) if path.suffix == ".csv" else jsonl_rows(path)


def import_review(paths: list[str | Path]) -> dict:
    """Read reviewed files (a reviewer per row, or the file's name as the reviewer), and report the human labels'
    counts, how often they agree with the automatic categories, and the agreement between reviewers."""
    labels: dict[str, dict[str, str]] = defaultdict(dict)  # id -> reviewer -> label
    auto: dict[str, list[str]] = {}
    for path in map(Path, paths):
        if not path.is_file():
            raise DataError("review file not found", file=str(path))
        for line, row in _review_rows(path):
            label = (row.get("label") or "").strip()
            if not label:
                continue
            if label not in REVIEW_LABELS:
                raise DataError(
                    f"unknown review label {label!r} (expected one of {', '.join(REVIEW_LABELS)})",
                    file=str(path),
                    line=line,
                    field="label",
                )
            if not row.get("id"):
                raise DataError("missing id", file=str(path), line=line, field="id")
            labels[str(row["id"])][(row.get("reviewer") or "").strip() or path.stem] = label
            auto[str(row["id"])] = str(row.get("auto_categories") or "").split()
    reviewers = sorted({r for by in labels.values() for r in by})
    votes = [label for by in labels.values() for label in by.values()]
    matches = [label in auto[i] for i, by in labels.items() for label in by.values()]
    return {
        "examples": len(labels),
        "reviewers": reviewers,
        "labels": dict(Counter(votes)),
        "agreement_with_automatic": sum(matches) / len(matches) if matches else None,
        "between_reviewers": _agreement([[by.get(r) for r in reviewers] for by in labels.values()]),
    }


def _agreement(table: list[list[str | None]]) -> dict | None:
    """Reviewer agreement with the data audit's statistics: nominal Krippendorff's alpha and pairwise Cohen's
    kappa (reviewers as annotators, examples as records)."""
    if not table or len(table[0]) < 2:
        return None
    matrix, categories = ratings(table)
    return {
        "krippendorff_alpha": float(krippendorff_alpha(value_counts(matrix, len(categories)))),
        "cohen_kappa": pairwise_cohen(matrix),
    }
