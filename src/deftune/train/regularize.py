"""Conservative regularisation: L2-SP toward the pretrained weights, and dropout targeted at attention."""

from __future__ import annotations

import torch
from torch import nn

from ..config import DropoutConfig

ATTENTION_MARKERS = ("attn", "attention")  # self_attn, cross_attn, attention, ...


def is_attention_path(name: str) -> bool:
    """Whether a module path lies inside an attention block (q/k/v/o projections and their adapters)."""
    return any(marker in name for marker in ATTENTION_MARKERS)


class L2SP:
    """The L2-SP penalty alpha/2 * ||theta - theta0||^2 over fully trained weight matrices, anchored at their
    pretrained values theta0. Norm weights and biases (1-D parameters) are left out."""

    def __init__(self, named_parameters, alpha: float):
        self.alpha = alpha
        self.params = {name: p for name, p in named_parameters if p.requires_grad and p.ndim >= 2}
        self.anchors = {name: p.detach().clone() for name, p in self.params.items()}

    def __bool__(self) -> bool:
        return bool(self.params) and self.alpha > 0

    def penalty(self) -> torch.Tensor:
        total = sum(((p - self.anchors[n].to(p.device)) ** 2).sum() for n, p in self.params.items())
        return 0.5 * self.alpha * total


def set_attention_dropout(model, rate: float) -> int:
    """Dropout on attention probabilities: set on the config and on every attention module that reads it
    (Llama-style modules copy `config.attention_dropout` at construction). Returns the modules changed."""
    model.config.attention_dropout = rate
    changed = 0
    for module in model.modules():
        if isinstance(getattr(module, "attention_dropout", None), float):
            module.attention_dropout = rate
            changed += 1
    return changed


def target_lora_dropout(model, cfg: DropoutConfig) -> None:
    """LoRA dropout at `attention_modules` on attention projections and `mlp_modules` elsewhere."""
    for name, module in model.named_modules():
        dropouts = getattr(module, "lora_dropout", None)
        if not isinstance(dropouts, nn.ModuleDict):
            continue
        rate = cfg.attention_modules if is_attention_path(name) else cfg.mlp_modules
        for key in list(dropouts.keys()):
            dropouts[key] = nn.Dropout(rate) if rate > 0 else nn.Identity()
