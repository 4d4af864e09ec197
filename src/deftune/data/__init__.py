"""Data: canonical records, loaders, rendering with loss masks, the demo dataset and splits."""

from __future__ import annotations

import random

from ..config import DataConfig
from ..errors import DataError
from . import demo
from .records import Dataset, Record, load_file
from .render import Renderer, Rendered
from .split import split

__all__ = ["Dataset", "Record", "Renderer", "Rendered", "load", "load_splits", "renderer_for"]


def load(path: str, fmt: str = "auto") -> Dataset:
    """Load a dataset from a file/folder or an embedded name (`embedded:bbc-news`)."""
    if path.startswith("embedded:"):
        name = path.removeprefix("embedded:")
        if name not in demo.EMBEDDED:
            raise DataError(f"unknown embedded dataset '{name}' (known: {', '.join(demo.EMBEDDED)})",
                            field="data.path")
        dataset = demo.bbc_news()
        if fmt not in ("auto", dataset.format):
            raise DataError(f"embedded:{name} is a {dataset.format} dataset, not {fmt}", field="data.format")
        return dataset
    return load_file(path, fmt)


def _subset(records: list[Record], limit: int | None, seed: int) -> list[Record]:
    if limit is None or limit >= len(records):
        return records
    return random.Random(seed).sample(records, limit)


def load_splits(cfg: DataConfig, seed: int) -> dict[str, Dataset]:
    """Train/validation/test datasets: from separate files when given, else a seeded split of `cfg.path`."""
    main = load(cfg.path, cfg.format)
    if cfg.validation_path or cfg.test_path:
        parts = {"train": main.records,
                 "validation": load(cfg.validation_path, main.format).records if cfg.validation_path else [],
                 "test": load(cfg.test_path, main.format).records if cfg.test_path else []}
    else:
        parts = split(main.records, validation=cfg.split.validation, test=cfg.split.test, seed=seed)
    parts["train"] = _subset(parts["train"], cfg.max_train_examples, seed)
    parts["validation"] = _subset(parts["validation"], cfg.max_validation_examples, seed)
    return {name: Dataset(records, main.format, f"{main.source}#{name}") for name, records in parts.items()}


def renderer_for(tokenizer, cfg: DataConfig, *datasets: Dataset) -> Renderer:
    """A renderer for datasets of one task: the label set (configured, else every label seen in them) goes
    into the prompt."""
    labels = cfg.labels or sorted({label for d in datasets for label in d.labels})
    return Renderer(tokenizer, labels=labels, instruction=cfg.instruction,
                    max_input_tokens=cfg.max_input_tokens, max_length=cfg.max_length)
