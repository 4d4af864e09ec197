"""Seeded train/validation/test splits, stratified by label when records have one."""

from __future__ import annotations

import random
from collections import defaultdict

from .records import Record


def split(records: list[Record], *, validation: float, test: float, seed: int) -> dict[str, list[Record]]:
    """Cut records into train/validation/test. Within each label (or over all records) the order is a seeded
    shuffle and each split takes its rounded share, so the result depends only on the ids, labels and seed."""
    by_label: dict[str | None, list[Record]] = defaultdict(list)
    for record in sorted(records, key=lambda r: r.id):
        by_label[record.label].append(record)
    rng = random.Random(seed)
    parts: dict[str, list[Record]] = {"train": [], "validation": [], "test": []}
    for label in sorted(by_label, key=str):
        group = by_label[label]
        rng.shuffle(group)
        n_test, n_val = round(len(group) * test), round(len(group) * validation)
        parts["test"] += group[:n_test]
        parts["validation"] += group[n_test : n_test + n_val]
        parts["train"] += group[n_test + n_val :]
    for part in parts.values():
        rng.shuffle(part)
    return parts
