"""Data transforms applied to the split before training, in order: augmentation (variants of training records),
then balancing (so variants are balanced too). Each takes the splits, the config and the run folder, writes its
report there and returns the new splits; only the training part changes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..config import Config
from ..data import augment, balance
from ..data.records import Dataset


@dataclass(frozen=True)
class Transform:
    name: str
    enabled: Callable[[Config], bool]
    apply: Callable[[dict[str, Dataset], Config, Path], dict[str, Dataset]]


TRANSFORMS = (
    Transform("augment", lambda cfg: cfg.data.augment.enabled, augment.for_training),
    Transform("balance", lambda cfg: cfg.data.balance.enabled, balance.for_training),
)


def apply(splits: dict[str, Dataset], cfg: Config, run_dir: Path) -> dict[str, Dataset]:
    for transform in TRANSFORMS:
        if transform.enabled(cfg):
            splits = transform.apply(splits, cfg, run_dir)
    return splits
