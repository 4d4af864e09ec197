"""Method `full`: every weight of the base model is trained (L2-SP pulls them toward their pretrained values)."""

from __future__ import annotations

from . import Method, register


def _apply(model, cfg, dropout):
    for param in model.parameters():
        param.requires_grad_(True)
    return model


register(
    Method(
        name="full",
        summary="every weight trained",
        apply=_apply,
        saved_as="model",
        trains_base=True,
        claims={"modified": (100, 100), "savings": (0, 0)},
    )
)
