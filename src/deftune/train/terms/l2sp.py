"""L2-SP (Li et al. 2018): alpha/2 * ||theta - theta0||^2 over fully trained weight matrices, anchored at their
pretrained values theta0, in place of weight decay toward zero. Norm weights and biases (1-D) are left out."""

from __future__ import annotations

import torch

from . import LossTerm


class L2SP(LossTerm):
    def __init__(self, named_parameters, alpha: float):
        self.alpha = alpha
        self.params = {name: p for name, p in named_parameters if p.requires_grad and p.ndim >= 2}
        self.anchors = {name: p.detach().clone() for name, p in self.params.items()}

    def __bool__(self) -> bool:
        return bool(self.params) and self.alpha > 0

    def penalty(self) -> torch.Tensor:
        total = sum(((p - self.anchors[n].to(p.device)) ** 2).sum() for n, p in self.params.items())
        return 0.5 * self.alpha * total

    def loss(self, model, inputs: dict) -> torch.Tensor:
        return self.penalty()

    def undecayed(self) -> set[int]:
        return {id(p) for p in self.params.values()}


def build(model, base_params: set[int], training) -> L2SP | None:
    """The L2-SP term for the base model's weights that are trained (`training.regularization: l2sp`), or None
    when there are none (PEFT methods) or it is off."""
    if training.regularization != "l2sp":
        return None
    term = L2SP([(n, p) for n, p in model.named_parameters() if id(p) in base_params], training.l2sp)
    return term if term else None
