"""Plain-text views of a dataset, aligned by position, that the checks share.

- ``prompts``: what the model is given (user/system turns, the prompt, the classification text; empty for text);
- ``responses``: what it learns to say (assistant turns, the completion, the label; the whole text for text);
- ``contents``: the record's own words (prompt and response; the text alone for classification);
- ``labels``: the label, else the annotators' majority, else None.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..records import Dataset, Record, content, majority, prompt_and_response


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
        prompts, responses = zip(*map(prompt_and_response, records)) if records else ((), ())
        contents = [content(record) for record in records]
        labels = np.array([r.label if r.label is not None else majority(r.annotations) for r in records], dtype=object)
        return cls(
            records, np.array([r.id for r in records], dtype=object), list(prompts), list(responses), contents, labels
        )

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
