"""Fine-tuning methods, one module each, in one registry.

A method module registers a `Method`: its settings section (under `method.`), how it is applied to a model,
saved, loaded onto a base and merged (or why it cannot be), its sweep parameters, its memory-plan hints and what
it is incompatible with. The config's allowed `method.name` values, its `method.*` sections, the sweep's
parameters, `plan --compare` and export read the registry, so a new method is one new module here (modules are
discovered by name; those starting with "_" are helpers).

This package sits below the config: it takes the config's sections as plain objects and imports none of it.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class SweepParam:
    """A value a sweep may search: the config key it sets, its default range and whether it is log-scaled."""

    path: str
    default: tuple[float, float]
    log: bool = True
    description: str = ""


@dataclass(frozen=True)
class Incompatible:
    """A config the method cannot train with: `when(config)` is true, `why` says what to change."""

    when: Callable[[Any], bool]
    why: str


@dataclass(frozen=True)
class Method:
    name: str
    summary: str
    apply: Callable  # (model, method settings, dropout settings) -> the model to train
    saved_as: str = "adapter"  # the folder under <run>/train/: "adapter" (weights beside the base) or "model"
    section: str | None = None  # its settings: method.<section>
    settings: type | None = None  # the pydantic model of that section
    save: Callable[[Any, Path], Path] | None = None  # (model, folder) -> folder; default: save_pretrained
    load: Callable[[Any, Path], Any] | None = None  # (base model, folder) -> model; default: PEFT's loader
    recognizes: Callable[[Path], bool] | None = None  # whether a saved folder is this method's own format
    unmergeable: str | None = None  # why the weights cannot be merged into the base; None: merge_and_unload
    trains_base: bool = False  # every base weight is trained (L2-SP anchors them)
    quantized_base: bool = False  # the base is loaded in 4 bit
    plan_as: str | None = None  # the method whose parameter counts the memory plan uses (qlora: lora)
    unavailable: Callable[[str], str | None] | None = None  # (device) -> why it cannot run there, or None
    claims: dict[str, tuple[int, int]] | None = None  # the guide's claims (modified %, memory saved %) to check
    sweep: dict[str, SweepParam] = field(default_factory=dict)
    incompatible: tuple[Incompatible, ...] = ()


REGISTRY: dict[str, Method] = {}


def register(method: Method) -> Method:
    if method.name in REGISTRY:
        raise ValueError(f"method {method.name!r} is registered twice")
    REGISTRY[method.name] = method
    return method


def get(name: str) -> Method:
    return REGISTRY[name]


def names() -> tuple[str, ...]:
    return tuple(REGISTRY)


def sections() -> dict[str, type]:
    """The settings sections under `method.`, by name (methods may share one, as the LoRA variants do)."""
    return {m.section: m.settings for m in REGISTRY.values() if m.section}


def sweep_params() -> dict[str, tuple[SweepParam, tuple[str, ...]]]:
    """Each method-specific sweep parameter with the methods it applies to."""
    found: dict[str, tuple[SweepParam, tuple[str, ...]]] = {}
    for method in REGISTRY.values():
        for key, param in method.sweep.items():
            found[key] = (param, found.get(key, (param, ()))[1] + (method.name,))
    return found


@dataclass
class ParameterCount:
    trainable: int
    total: int

    @property
    def share(self) -> float:
        return self.trainable / self.total if self.total else 0.0

    def __str__(self) -> str:
        return f"{self.trainable:,} of {self.total:,} parameters trainable ({100 * self.share:.2f}%)"


def count_parameters(model) -> ParameterCount:
    trainable = total = 0
    for p in model.parameters():
        n = p.numel() * (2 if p.__class__.__name__ == "Params4bit" else 1)  # 4-bit weights pack two per byte
        total += n
        trainable += n if p.requires_grad else 0
    return ParameterCount(trainable, total)


def apply(model, cfg, dropout):
    """Prepare `model` for the method `cfg` (the `method` section) names; returns the model to train."""
    return get(cfg.name).apply(model, cfg, dropout)


def save(model, cfg, train_dir: Path) -> Path:
    """Save the trained result under `train_dir` (an adapter folder or the full model, safetensors)."""
    method = get(cfg.name)
    target = train_dir / method.saved_as
    if method.save:
        return method.save(model, target)
    model.save_pretrained(target, safe_serialization=True)
    return target


def load_onto(base_model, adapter_dir: Path):
    """Put a saved adapter (any registered method's) onto its base model, for inference."""
    for method in REGISTRY.values():
        if method.recognizes and method.recognizes(adapter_dir):
            return method.load(base_model, adapter_dir)
    from peft import PeftModel

    return PeftModel.from_pretrained(base_model, adapter_dir)


for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")
for _name in sorted(REGISTRY):  # one order everywhere (names, plan tables), whatever the import order
    REGISTRY[_name] = REGISTRY.pop(_name)
