"""Method `ia3` (PEFT IA3): learned per-feature scaling vectors on the attention keys and values and on the MLP's
down-projection input; a few thousand parameters, mergeable into the base weights."""

from __future__ import annotations

from pydantic import Field

from ..settings import Section
from . import Method, register
from .lora import peft_model


class IA3Settings(Section):
    target_modules: list[str] | None = Field(
        None, description="modules scaled (default: PEFT's for the architecture, e.g. k_proj, v_proj, down_proj)"
    )
    feedforward_modules: list[str] | None = Field(
        None, description="of those, the ones scaled at their input (default: PEFT's, e.g. down_proj)"
    )


def _apply(model, cfg, dropout):
    from peft import IA3Config

    return peft_model(
        model,
        IA3Config(
            target_modules=cfg.ia3.target_modules,
            feedforward_modules=cfg.ia3.feedforward_modules,
            task_type="CAUSAL_LM",
        ),
        cfg.name,
    )


register(
    Method(
        name="ia3",
        summary="learned scaling of attention keys/values and MLP inputs (PEFT IA3)",
        apply=_apply,
        section="ia3",
        settings=IA3Settings,
    )
)
