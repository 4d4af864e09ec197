"""Plain-text views of a dataset, aligned by position, that the checks share.

- ``prompts``: what the model is given (user/system turns, the prompt, the classification text; empty for text);
- ``responses``: what it learns to say (assistant turns, the completion, the label; the whole text for text);
- ``contents``: the record's own words (prompt and response; the text alone for classification);
- ``labels``: the label, else the annotators' majority, else None.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from ..records import Dataset, Record


def majority(annotations: list[str | None] | None) -> str | None:
    """The annotators' most frequent label, or None when there is none or a tie."""
    top = Counter(a for a in annotations or [] if a is not None).most_common(2)
    if not top or (len(top) == 2 and top[0][1] == top[1][1]):
        return None
    return top[0][0]


def _split(record: Record) -> tuple[str, str]:
    if record.format == "chat":
        said = [(m["role"] == "assistant", m["content"]) for m in record.messages]
        return "\n".join(c for a, c in said if not a), "\n".join(c for a, c in said if a)
    if record.format == "completion":
        return record.prompt, record.completion
    if record.format == "classification":
        return record.text, record.label
    return "", record.text


def _content(record: Record, prompt: str, answer: str) -> str:
    return prompt if record.format == "classification" else "\n".join(t for t in (prompt, answer) if t)


def content(record: Record) -> str:
    """The record's own words: prompt and response, or the text alone for classification."""
    return _content(record, *_split(record))


@dataclass
class Texts:
    records: list[Record]
    ids: np.ndarray
    prompts: list[str]
    responses: list[str]
    contents: list[str]
    labels: np.ndarray  # object array, None where a record has no label

    @classmethod
    def of(cls, dataset: Dataset) -> Texts:
        records = dataset.records
        prompts, responses = zip(*map(_split, records)) if records else ((), ())
        contents = [_content(record, prompt, answer) for record, prompt, answer in zip(records, prompts, responses)]
        labels = np.array([r.label if r.label is not None else majority(r.annotations) for r in records], dtype=object)
        return cls(records, np.array([r.id for r in records], dtype=object), list(prompts), list(responses),
                   contents, labels)

    @property
    def format(self) -> str:
        return self.records[0].format

    @property
    def labelled(self) -> np.ndarray:
        return np.array([label is not None for label in self.labels], dtype=bool)

    def meta(self, name: str) -> np.ndarray:
        """One meta field per record (None where absent), as strings."""
        return np.array([None if r.meta.get(name) is None else str(r.meta[name]) for r in self.records], dtype=object)

    def __len__(self) -> int:
        return len(self.records)
