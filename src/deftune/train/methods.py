"""Fine-tuning methods: which weights are trained, and how the result is saved."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import MethodConfig
from ..errors import ConfigError


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
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return ParameterCount(trainable, sum(p.numel() for p in model.parameters()))


def apply(model, cfg: MethodConfig):
    """Prepare `model` for the configured method and return the model to train."""
    if cfg.name == "full":
        for param in model.parameters():
            param.requires_grad_(True)
        return model
    if cfg.name == "lora":
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                          target_modules=cfg.lora.target_modules, task_type="CAUSAL_LM")
        try:
            return get_peft_model(model, lora)
        except ValueError as exc:  # e.g. target modules not found in this architecture
            raise ConfigError(f"method.lora: {exc}") from None
    raise ConfigError(f"method.name: unknown method {cfg.name!r}")
