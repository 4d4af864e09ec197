"""Methods `lora`, `dora` and `qlora` (PEFT): low-rank updates of the base model's linear layers; DoRA also learns
each column's magnitude, QLoRA trains LoRA on a 4-bit base. They share the `method.lora` settings."""

from __future__ import annotations

from pydantic import Field

from ..errors import ConfigError
from ..settings import Section
from . import Method, SweepParam, register

ATTENTION_MARKERS = ("attn", "attention")  # self_attn, cross_attn, attention, ...


class LoraSettings(Section):
    r: int = Field(16, gt=0)
    alpha: float = Field(32, gt=0)
    target_modules: str | list[str] = "all-linear"


def is_attention_path(name: str) -> bool:
    """Whether a module path lies inside an attention block (q/k/v/o projections and their adapters)."""
    return any(marker in name for marker in ATTENTION_MARKERS)


def target_lora_dropout(model, dropout) -> None:
    """LoRA dropout at `dropout.attention_modules` on attention projections and `mlp_modules` elsewhere."""
    from torch import nn

    for name, module in model.named_modules():
        dropouts = getattr(module, "lora_dropout", None)
        if not isinstance(dropouts, nn.ModuleDict):
            continue
        rate = dropout.attention_modules if is_attention_path(name) else dropout.mlp_modules
        for key in list(dropouts.keys()):
            dropouts[key] = nn.Dropout(rate) if rate > 0 else nn.Identity()


def peft_model(model, peft_config, method: str):
    """`peft.get_peft_model`, with a config error naming the method when the config does not fit the model."""
    from peft import get_peft_model

    try:
        return get_peft_model(model, peft_config)
    except ValueError as exc:  # e.g. target modules not found in this architecture
        raise ConfigError(f"method.{method}: {exc}") from None


def _applier(dora: bool = False, quantized: bool = False):
    def apply(model, cfg, dropout):
        from peft import LoraConfig, prepare_model_for_kbit_training

        if quantized:
            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
        tuned = peft_model(
            model,
            LoraConfig(
                r=cfg.lora.r,
                lora_alpha=cfg.lora.alpha,
                lora_dropout=dropout.attention_modules,
                target_modules=cfg.lora.target_modules,
                use_dora=dora,
                task_type="CAUSAL_LM",
            ),
            cfg.name,
        )
        target_lora_dropout(tuned, dropout)
        return tuned

    return apply


def _needs_bitsandbytes(device: str) -> str | None:
    from importlib.util import find_spec

    if device != "cuda" or find_spec("bitsandbytes") is None:
        return "qlora needs CUDA and bitsandbytes"
    return None


SWEEP = {
    "lora_r": SweepParam("method.lora.r", (4, 64), description="method.lora.r (log scale)"),
    "lora_alpha": SweepParam("method.lora.alpha", (8.0, 64.0), description="method.lora.alpha (log scale)"),
}

register(
    Method(
        name="lora",
        summary="low-rank updates of the linear layers (PEFT LoRA)",
        apply=_applier(),
        section="lora",
        settings=LoraSettings,
        claims={"modified": (1, 2), "savings": (60, 80)},
        sweep=SWEEP,
    )
)
register(
    Method(
        name="dora",
        summary="LoRA with learned column magnitudes (PEFT DoRA)",
        apply=_applier(dora=True),
        section="lora",
        settings=LoraSettings,
        sweep=SWEEP,
    )
)
register(
    Method(
        name="qlora",
        summary="LoRA on a 4-bit base model (bitsandbytes)",
        apply=_applier(quantized=True),
        section="lora",
        settings=LoraSettings,
        quantized_base=True,
        plan_as="lora",
        unavailable=_needs_bitsandbytes,
        sweep=SWEEP,
    )
)
