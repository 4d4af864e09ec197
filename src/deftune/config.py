"""The one YAML configuration: pydantic models with defaults that run the demo, strict keys with suggestions,
and `key=value` overrides from the command line."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import ConfigError


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SplitConfig(Section):
    """How one dataset is cut into train/validation/test when no separate files are given (seeded, stratified
    by label for classification)."""
    validation: float = Field(0.1, ge=0, lt=1)
    test: float = Field(0.2, ge=0, lt=1)

    @model_validator(mode="after")
    def _leaves_training_data(self):
        if self.validation + self.test >= 1:
            raise ValueError("validation + test must be below 1 so that some data is left for training")
        return self


class DataConfig(Section):
    path: str = Field("embedded:bbc-news", description="dataset file/folder or an embedded dataset name")
    validation_path: str | None = None
    test_path: str | None = None
    format: Literal["auto", "chat", "completion", "text", "classification"] = "auto"
    labels: list[str] | None = Field(None, description="label set for classification (default: labels seen)")
    instruction: str = Field(
        "Classify the text into one of these categories: {labels}.\nAnswer with the category only.\n\n"
        "Text:\n{text}",
        description="prompt for classification records; {labels} and {text} are filled in")
    max_input_tokens: int = Field(128, gt=0, description="classification text is cut to this many tokens")
    max_length: int = Field(256, gt=0, description="longer rendered examples are dropped (and counted)")
    max_train_examples: int | None = Field(None, gt=0, description="seeded subset of the training split")
    max_validation_examples: int | None = Field(None, gt=0)
    split: SplitConfig = SplitConfig()


class ModelConfig(Section):
    spec: str = Field("embedded:smollm2-135m-instruct",
                      description="embedded:NAME, a local Hugging Face folder, a .gguf file or a hub id")
    revision: str | None = None
    trust_remote_code: bool = False
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"


class LoraConfig(Section):
    r: int = Field(16, gt=0)
    alpha: float = Field(32, gt=0)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: str | list[str] = "all-linear"


class MethodConfig(Section):
    name: Literal["lora", "full"] = "lora"
    lora: LoraConfig = LoraConfig()


class TrainingConfig(Section):
    epochs: float = Field(1.0, gt=0)
    max_steps: int = Field(-1, description="stop after this many optimizer steps (-1: run the epochs)")
    learning_rate: float = Field(2e-4, gt=0)
    lr_scheduler: Literal["linear", "cosine", "constant_with_warmup"] = "linear"
    warmup_ratio: float = Field(0.05, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    batch_size: int = Field(8, gt=0, description="examples per micro-batch")
    gradient_accumulation: int = Field(1, gt=0)
    max_grad_norm: float = Field(1.0, gt=0)
    bf16: bool = Field(True, description="bfloat16 autocast (mixed precision; fast on CPUs with AVX512-BF16/AMX and on recent GPUs)")
    gradient_checkpointing: bool = False
    logging_steps: int = Field(1, gt=0)
    eval_steps: int | None = Field(None, gt=0, description="validation loss every N steps (default: at the end)")


class EvaluationConfig(Section):
    batch_size: int = Field(16, gt=0, description="examples per batch when scoring validation data")


class SafetyConfig(Section):
    """Safety stage settings (input/output screens, bias benchmarks) are added with that stage."""


class ReportConfig(Section):
    """Report settings are added with the report stage."""


class RunConfig(Section):
    name: str | None = Field(None, description="run folder name (default: <stage>-<timestamp>)")
    root: str = "runs"
    seed: int = 42


class Config(Section):
    run: RunConfig = RunConfig()
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    method: MethodConfig = MethodConfig()
    training: TrainingConfig = TrainingConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    safety: SafetyConfig = SafetyConfig()
    report: ReportConfig = ReportConfig()


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


def _describe(error: dict, source: str) -> str:
    loc = tuple(error["loc"])
    key = ".".join(str(p) for p in loc)
    if error["type"] == "extra_forbidden":
        owner = _model_at(loc)
        known = list(owner.model_fields) if owner else []
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = f" (did you mean '{'.'.join([*map(str, loc[:-1]), close[0]])}'?)" if close else (
            f" (known keys: {', '.join(known)})" if known else " (this section has no keys yet)")
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
            raise ConfigError(f"invalid YAML ({getattr(exc, 'problem', exc)})", file=str(path),
                              line=mark.line + 1 if mark else None) from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError("the config must be a mapping of sections", file=str(path))
        raw = loaded or {}
    for override in overrides:
        apply_override(raw, override)
    return validate(raw, source)


def dump(config: Config) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
