"""Data: canonical records, loaders, rendering with loss masks, the demo dataset and splits."""

from __future__ import annotations

import random

from ..config import DataConfig
from ..core.topics import fit_topics
from ..errors import DataError
from . import demo
from .records import Dataset, Record, content, load_file
from .render import Rendered, Renderer
from .split import split

__all__ = ["Dataset", "Record", "Renderer", "Rendered", "load", "load_splits", "renderer_for"]


def load(path: str, fmt: str = "auto", *, id_prefix: str = "") -> Dataset:
    """Load a dataset from a file/folder or an embedded name (`embedded:bbc-news`); records without an id get
    `id_prefix` + their index."""
    if path.startswith("embedded:"):
        name = path.removeprefix("embedded:")
        if name not in demo.EMBEDDED:
            raise DataError(f"unknown embedded dataset '{name}' (known: {', '.join(demo.EMBEDDED)})", field="data.path")
        dataset = demo.bbc_news()
        if fmt not in ("auto", dataset.format):
            raise DataError(f"embedded:{name} is a {dataset.format} dataset, not {fmt}", field="data.format")
        return dataset
    return load_file(path, fmt, id_prefix=id_prefix)


def seeded_subset(items: list, n: int | None, seed: int) -> list:
    """A seeded random sample of n items (all of them when n is None or not smaller)."""
    return items if n is None or n >= len(items) else random.Random(seed).sample(items, n)


def _parts(cfg: DataConfig, seed: int) -> tuple[Dataset, dict[str, list[Record]]]:
    """The records of each split. Separate validation/test files number their id-less records apart from the
    training file's ("validation-0", ...), and an id in two files is an error: records are tracked by id (split.json,
    hold-out, weights)."""
    main = load(cfg.path, cfg.format)
    if cfg.validation_path or cfg.test_path:
        parts = {"train": main.records}
        for name, path in (("validation", cfg.validation_path), ("test", cfg.test_path)):
            parts[name] = load(path, main.format, id_prefix=f"{name}-").records if path else []
        _unique_ids(parts)
        return main, parts
    return main, split(main.records, validation=cfg.split.validation, test=cfg.split.test, seed=seed)


def _unique_ids(parts: dict[str, list[Record]]) -> None:
    """Each file's own ids are unique (load checks that), so an id seen twice here is in two files."""
    first: dict[str, Record] = {}
    for record in (r for records in parts.values() for r in records):
        seen = first.setdefault(record.id, record)
        if seen is not record:
            raise DataError(
                f"id {record.id!r} is also at {seen.source}: ids must be unique across the training, "
                "validation and test files",
                file=record.source,
                field="id",
            )


def load_splits(cfg: DataConfig, seed: int) -> dict[str, Dataset]:
    """Train/validation/test datasets: from separate files when given, else a seeded split of `cfg.path`; the
    records data.split.hold_out names are moved to the test split."""
    main, parts = _parts(cfg, seed)
    if cfg.split.hold_out:
        held = _held_out(parts, cfg, seed)
        parts = {
            "train": [r for r in parts["train"] if r.id not in held],
            "validation": [r for r in parts["validation"] if r.id not in held],
            "test": parts["test"] + [r for r in parts["train"] + parts["validation"] if r.id in held],
        }
    parts["train"] = seeded_subset(parts["train"], cfg.max_train_examples, seed)
    parts["validation"] = seeded_subset(parts["validation"], cfg.max_validation_examples, seed)
    return {name: Dataset(records, main.format, f"{main.source}#{name}") for name, records in parts.items()}


def held_out_ids(cfg: DataConfig, seed: int) -> set[str]:
    """The ids of the records data.split.hold_out names (the topic left out of training)."""
    return _held_out(_parts(cfg, seed)[1], cfg, seed)


def _held_out(parts: dict[str, list[Record]], cfg: DataConfig, seed: int) -> set[str]:
    """A meta field's value, or the audit's topic K fitted on the records of every split."""
    records = [r for part in parts.values() for r in part]
    field, _, value = cfg.split.hold_out.partition("=")
    if field == "topic":
        fitted = fit_topics([content(r) for r in records], cfg.audit, seed)
        if isinstance(fitted, str) or not value.isdigit() or int(value) >= len(fitted.keywords):
            found = fitted if isinstance(fitted, str) else f"topics are 0 to {len(fitted.keywords) - 1}"
            raise DataError(f"cannot hold out topic {value!r}: {found}", field="data.split.hold_out")
        held = {r.id for r, t in zip(records, fitted.assigned) if t == int(value)}
    else:
        held = {r.id for r in records if r.meta.get(field) is not None and str(r.meta[field]) == value}
    if not held:
        raise DataError(f"no record has {field}={value}", field="data.split.hold_out")
    return held


def renderer_for(tokenizer, cfg: DataConfig, *datasets: Dataset) -> Renderer:
    """A renderer for datasets of one task: the label set (configured, else every label seen in them) goes
    into the prompt."""
    labels = cfg.labels or sorted({label for d in datasets for label in d.labels})
    return Renderer(
        tokenizer,
        labels=labels,
        instruction=cfg.instruction,
        max_input_tokens=cfg.max_input_tokens,
        max_length=cfg.max_length,
    )
