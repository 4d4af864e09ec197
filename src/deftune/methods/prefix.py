"""Method `prefix` (PEFT prefix tuning): trained key/value vectors of virtual tokens in front of every layer's
attention; the base model is untouched."""

from __future__ import annotations

from pydantic import Field

from ..settings import Section
from . import Incompatible, Method, register
from .lora import peft_model


class PrefixSettings(Section):
    num_virtual_tokens: int = Field(20, gt=0)


def _apply(model, cfg, dropout):
    from peft import PrefixTuningConfig

    return peft_model(
        model, PrefixTuningConfig(num_virtual_tokens=cfg.prefix.num_virtual_tokens, task_type="CAUSAL_LM"), cfg.name
    )


register(
    Method(
        name="prefix",
        summary="trained virtual-token keys and values before each layer (PEFT prefix tuning)",
        apply=_apply,
        section="prefix",
        settings=PrefixSettings,
        unmergeable="prefix tuning adds virtual tokens, not weight deltas",
        claims={"modified": (0, 1), "savings": (80, 90)},
        incompatible=(
            Incompatible(
                lambda c: c.training.gradient_checkpointing,
                "method prefix does not train with training.gradient_checkpointing (the recomputed "
                "attention loses the prefix's keys); turn checkpointing off",
            ),
        ),
    )
)
