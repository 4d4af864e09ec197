"""Fine-tuning methods — which weights are trained, and how the result is saved:
full | lora | dora | qlora (PEFT LoRA variants) | prefix (PEFT prefix tuning) | adapter (our bottleneck adapters)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config import DropoutConfig, MethodConfig
from ..errors import ConfigError
from . import adapters
from .regularize import target_lora_dropout

PEFT_METHODS = ("lora", "dora", "qlora", "prefix")


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


def apply(model, cfg: MethodConfig, dropout: DropoutConfig = DropoutConfig()):
    """Prepare `model` for the configured method and return the model to train."""
    if cfg.name == "full":
        for param in model.parameters():
            param.requires_grad_(True)
        return model
    if cfg.name == "adapter":
        return adapters.add_adapters(model, adapters.AdapterConfig(
            reduction_factor=cfg.adapter.reduction_factor, nonlinearity=cfg.adapter.nonlinearity,
            attention_dropout=dropout.attention_modules, mlp_dropout=dropout.mlp_modules))
    from peft import LoraConfig, PrefixTuningConfig, get_peft_model, prepare_model_for_kbit_training

    if cfg.name == "prefix":
        peft_config = PrefixTuningConfig(num_virtual_tokens=cfg.prefix.num_virtual_tokens, task_type="CAUSAL_LM")
    else:
        if cfg.name == "qlora":
            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
        peft_config = LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=dropout.attention_modules,
                                 target_modules=cfg.lora.target_modules, use_dora=cfg.name == "dora",
                                 task_type="CAUSAL_LM")
    try:
        peft_model = get_peft_model(model, peft_config)
    except ValueError as exc:  # e.g. target modules not found in this architecture
        raise ConfigError(f"method.{cfg.name}: {exc}") from None
    if cfg.name != "prefix":
        target_lora_dropout(peft_model, dropout)
    return peft_model


def save(model, cfg: MethodConfig, train_dir: Path) -> Path:
    """Save the trained result: PEFT adapter folder, bottleneck adapter folder, or the full model."""
    if cfg.name == "full":
        target = train_dir / "model"
        model.save_pretrained(target, safe_serialization=True)
    elif cfg.name == "adapter":
        target = adapters.save_adapters(model, train_dir / "adapter")
    else:
        target = train_dir / "adapter"
        model.save_pretrained(target, safe_serialization=True)
    return target


def load_onto(base_model, adapter_dir: Path):
    """Put a saved adapter (PEFT's or our bottleneck adapter) onto its base model, for inference."""
    if adapters.is_adapter_dir(adapter_dir):
        return adapters.load_adapters(base_model, adapter_dir)
    from peft import PeftModel

    return PeftModel.from_pretrained(base_model, adapter_dir)
