"""A classification model's answers as label probabilities: each label's rendered answer scored as the
continuation of the record's prompt."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..core.inference import option_scores, probabilities
from ..data.records import Record
from ..data.render import Renderer


def answer_text(renderer: Renderer, record: Record, label: str) -> str:
    """The trained answer text for `record` if its label were `label` (e.g. the label and end-of-turn token)."""
    segments = renderer.segments(replace(record, label=label))
    return [text for text, trained in segments if trained][-1]


def label_options(renderer: Renderer, records: list[Record]) -> tuple[list[str], list[list[str]]]:
    """Prompts, and per prompt the answer text of every label in the renderer's label set."""
    return (
        [renderer.prompt_text(r) for r in records],
        [[answer_text(renderer, r, label) for label in renderer.labels] for r in records],
    )


def label_probabilities(
    model, tokenizer, renderer: Renderer, records: list[Record], *, batch_size: int = 16
) -> np.ndarray:
    """(n, K) probabilities of the renderer's labels as the answer (softmax over the labels' log-likelihoods,
    each answer through its end-of-turn token, so a label that prefixes another is not favoured)."""
    prompts, options = label_options(renderer, records)
    return probabilities(option_scores(model, tokenizer, prompts, options, batch_size=batch_size))
