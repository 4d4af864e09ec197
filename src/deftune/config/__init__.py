"""The one YAML configuration: one pydantic section per stage (a module each in this package), defaults that run
the demo, strict keys with suggestions, and `key=value` overrides from the command line. Functions take their
section, not the whole tree; the pipeline keys its cache by sections."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError, model_validator

from .. import methods
from ..errors import ConfigError
from .base import Section, parse_duration
from .data import AuditConfig, AugmentConfig, BalanceConfig, DataConfig, SplitConfig
from .evaluation import EvaluationConfig
from .method import MethodConfig
from .model import ModelConfig
from .run import ReportConfig, RunConfig
from .safety import DpoConfig, SafetyConfig
from .sweep import SweepConfig
from .training import (
    AdversaryConfig,
    DropoutConfig,
    EarlyStoppingConfig,
    TrainingConfig,
)

__all__ = [
    "AdversaryConfig",
    "AuditConfig",
    "AugmentConfig",
    "BalanceConfig",
    "Config",
    "DataConfig",
    "DpoConfig",
    "DropoutConfig",
    "EarlyStoppingConfig",
    "EvaluationConfig",
    "MethodConfig",
    "ModelConfig",
    "ReportConfig",
    "RunConfig",
    "SafetyConfig",
    "Section",
    "SplitConfig",
    "SweepConfig",
    "TrainingConfig",
    "dump",
    "load",
    "parse_duration",
    "validate",
]


class Config(Section):
    run: RunConfig = RunConfig()
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    method: MethodConfig = MethodConfig()
    training: TrainingConfig = TrainingConfig()
    sweep: SweepConfig = SweepConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    safety: SafetyConfig = SafetyConfig()
    dpo: DpoConfig = DpoConfig()
    report: ReportConfig = ReportConfig()

    @model_validator(mode="after")
    def _compatible(self):
        for rule in methods.get(self.method.name).incompatible:
            if rule.when(self):
                raise ValueError(rule.why)
        return self


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The pydantic model that owns the key at `loc` (a path of field names), if any."""
    model: type[BaseModel] = Config
    for part in loc[:-1]:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model


# Keys that were merged into another: their old name fails with the new one.
RENAMED = {
    "training.bf16": "model.precision (auto | fp32 | bf16 | fp16; auto follows the hardware)",
    "training.fp16": "model.precision (auto | fp32 | bf16 | fp16; auto follows the hardware)",
    "evaluation.bf16": "model.precision (auto | fp32 | bf16 | fp16; auto follows the hardware)",
    "safety.balance": "data.balance.strategy",
    "safety.counterfactual": "data.balance.counterfactual",
    "safety.swap_lexicon": "data.balance.swap_lexicon",
    "safety.group_attribute": "data.group_attribute",
    **{f"safety.adversary_{key}": f"training.adversary.{key}" for key in AdversaryConfig.model_fields},
    **{f"safety.dpo_{key}": f"dpo.{key}" for key in DpoConfig.model_fields},
}


def _describe(error: dict, source: str) -> str:
    loc = tuple(error["loc"])
    key = ".".join(str(p) for p in loc)
    if error["type"] == "extra_forbidden" and key in RENAMED:
        return f"{source}: {key}: this key was replaced by {RENAMED[key]}"
    if error["type"] == "extra_forbidden":
        owner = _model_at(loc)
        known = list(owner.model_fields) if owner else []
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = (
            f" (did you mean '{'.'.join([*map(str, loc[:-1]), close[0]])}'?)"
            if close
            else (f" (known keys: {', '.join(known)})" if known else " (this section has no keys yet)")
        )
        return f"{source}: {key}: unknown key{hint}"
    return f"{source}: {key or '<top>'}: {error['msg']}"


def validate(raw: dict, source: str = "config") -> Config:
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError("; ".join(_describe(e, source) for e in exc.errors())) from None


def apply_override(raw: dict, override: str) -> None:
    """Set `a.b.c=value` in a raw config dict; the value is parsed as YAML (numbers, booleans, lists)."""
    key, sep, value = override.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override '{override}': expected key=value, e.g. training.learning_rate=1e-4")
    *parents, leaf = key.strip().split(".")
    node = raw
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override '{override}': '{part}' is not a section")
    try:
        node[leaf] = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"override '{override}': value is not valid YAML ({exc.problem})") from None


def load(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a YAML config (or none: the defaults), apply overrides, validate."""
    raw: dict[str, Any] = {}
    source = "overrides"
    if path is not None:
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read config: {exc.strerror}", file=str(path)) from None
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            raise ConfigError(
                f"invalid YAML ({getattr(exc, 'problem', exc)})", file=str(path), line=mark.line + 1 if mark else None
            ) from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError("the config must be a mapping of sections", file=str(path))
        raw = loaded or {}
    for override in overrides:
        apply_override(raw, override)
    return validate(raw, source)


def dump(config: Config) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
