"""Dropout targeted at attention: DropHead on head outputs, dropout on attention probabilities. (L2-SP is a loss
term, deftune.train.terms.l2sp; dropout inside LoRA/adapter modules is set where the method is applied.)"""

from __future__ import annotations

import torch
from torch import nn

from ..config import DropoutConfig


def targeted_dropout(model, cfg: DropoutConfig) -> None:
    """The dropout of the base model's attention: on head outputs and on attention probabilities. (Dropout in
    LoRA/adapter modules is set where the method is applied.)"""
    set_attention_dropout(model, cfg.attention_probs)
    set_head_dropout(model, cfg.attention_heads)


def set_head_dropout(model, rate: float) -> int:
    """DropHead (Zhou et al. 2020): in training, each attention head's output is zeroed with probability `rate`
    per example and the kept heads scaled by 1/(1 - rate), just before the output projection. Unlike dropout on
    attention probabilities it leaves the attention kernel untouched, so the fused kernels still run. Returns the
    attention modules changed (those with a `head_dim` and an `o_proj`, as Llama-style attention has)."""
    changed = 0
    for module in model.modules():
        projection, head_dim = getattr(module, "o_proj", None), getattr(module, "head_dim", None)
        if not isinstance(projection, nn.Module) or not isinstance(head_dim, int):
            continue
        handle = getattr(projection, "_deftune_head_dropout", None)
        if handle is not None:
            handle.remove()
        if rate > 0:
            projection._deftune_head_dropout = projection.register_forward_pre_hook(_drop_heads(rate, head_dim))
        changed += 1
    return changed


def _drop_heads(rate: float, head_dim: int):
    def hook(module, args):
        if not module.training:
            return None
        x, *rest = args  # (batch, seq, heads * head_dim)
        batch, seq, width = x.shape
        scale = (torch.rand(batch, 1, width // head_dim, 1, device=x.device) >= rate).to(x.dtype) / (1 - rate)
        # broadcast per head: autograd keeps only the (batch, 1, heads, 1) scale, not a mask of x's size
        return ((x.view(batch, seq, -1, head_dim) * scale).view(batch, seq, width), *rest)

    return hook


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
