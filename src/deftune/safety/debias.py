"""Adversarial debiasing (Ganin & Lempitsky 2015; Zhang et al. 2018): during fine-tuning an adversary head
predicts the protected attribute from the model's pooled hidden states through a gradient-reversal layer. The head
learns to predict the attribute; the reversed gradient, scaled by `safety.adversary_weight`, pushes the model to
make its representations uninformative about it. The adversary's accuracy is logged (it should fall toward the
majority-group rate) into metrics.jsonl and train/adversary.json.

The trainer calls `Adversary.loss(inputs)` once per micro-batch, like its L2-SP term. Rows are matched to their
record's group by their tokens (the collator passes no ids), so packing is not supported."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..config import Config
from ..errors import ConfigError

IGNORE = -100


class GradientReversal(torch.autograd.Function):
    """Identity forward; the gradient multiplied by -scale backward."""

    @staticmethod
    def forward(ctx, x, scale: float):
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.scale * grad, None


def reverse_gradient(x: torch.Tensor, scale: float) -> torch.Tensor:
    return GradientReversal.apply(x, scale)


def decoder_of(model) -> nn.Module:
    """The transformer body whose output is the last hidden states (below PEFT wrappers and the LM head)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.get_decoder()


class Adversary(nn.Module):
    """A two-layer head on mean-pooled last hidden states, behind a gradient-reversal layer."""

    def __init__(self, model, groups: list[str], row_groups: dict[tuple[int, ...], int], *, weight: float,
                 hidden: int):
        super().__init__()
        size = model.config.hidden_size
        self.groups, self.row_groups, self.weight = groups, row_groups, weight
        self.head = nn.Sequential(nn.Linear(size, hidden), nn.ReLU(), nn.Linear(hidden, len(groups)))
        self.head.to(next(model.parameters()).device)
        self._hidden: torch.Tensor | None = None
        decoder_of(model).register_forward_hook(self._capture)
        self.window = Counter()  # correct / seen / loss since the last log
        self.total = Counter()
        self.history: list[dict] = []

    def _capture(self, module, args, output):
        self._hidden = output[0] if isinstance(output, tuple) else output.last_hidden_state

    def targets(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Each row's group index (IGNORE where its record has no group)."""
        rows = [tuple(ids[m.bool()].tolist()) for ids, m in zip(input_ids, mask)]
        return torch.tensor([self.row_groups.get(r, IGNORE) for r in rows], device=input_ids.device)

    def loss(self, inputs: dict) -> torch.Tensor:
        """The adversary's cross-entropy on the hidden states of the forward pass just run (0 when no row of the
        batch has a group)."""
        ids = inputs["input_ids"]
        mask = inputs.get("attention_mask", torch.ones_like(ids))
        target = self.targets(ids, mask)
        hidden = self._hidden
        if hidden is None or not (target != IGNORE).any():
            return torch.zeros((), device=ids.device)
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)
        self.head.to(pooled.device)  # the trainer may have moved the model since the head was built
        logits = self.head(reverse_gradient(pooled.float(), self.weight))
        loss = F.cross_entropy(logits, target, ignore_index=IGNORE)
        known = target != IGNORE
        correct, seen = int((logits.argmax(-1) == target)[known].sum()), int(known.sum())
        for counter in (self.window, self.total):
            counter.update({"correct": correct, "seen": seen})
        self.window["loss"] += float(loss.detach()) * seen
        return loss

    def take_window(self, step: int) -> dict:
        """Accuracy and loss since the last call, for the log of `step` (also kept in `history`)."""
        seen = self.window["seen"]
        found = {"adversary_accuracy": self.window["correct"] / seen, "adversary_loss": self.window["loss"] / seen
                 } if seen else {}
        self.window = Counter()
        if found:
            self.history.append({"step": step, **found})
        return found


def build(cfg: Config, model, rendered: list, records: list) -> Adversary | None:
    """The adversary for a run (None unless `safety.adversary_weight` > 0 or `safety.adversary_probe`)."""
    sc = cfg.safety
    if sc.adversary_weight == 0 and not sc.adversary_probe:
        return None
    if cfg.training.packing:
        raise ConfigError("adversarial debiasing needs one example per row; set training.packing=false",
                          field="safety.adversary_weight")
    from .balance import groups_of

    by_id = dict(zip((r.id for r in records), groups_of(records, sc.group_attribute)))
    names = sorted({g for g in by_id.values() if g is not None})
    if len(names) < 2:
        raise ConfigError(f"adversarial debiasing needs at least two '{sc.group_attribute}' groups in the training "
                          f"data (found {names or 'none'}); set group fields or safety.group_attribute",
                          field="safety.group_attribute")
    row_groups = {tuple(r.input_ids): names.index(by_id[r.id]) for r in rendered if by_id.get(r.id) is not None}
    return Adversary(model, names, row_groups, weight=sc.adversary_weight, hidden=sc.adversary_hidden)


def callback(adversary: Adversary, out_dir: Path):
    """Writes adversary.json when training ends: the accuracy over the last fifth of the logged steps, the
    majority-group (chance) rate, groups, weight and the logged history."""
    from transformers import TrainerCallback

    from ..runs import write_json

    counts = Counter(adversary.row_groups.values())
    chance = max(counts.values()) / sum(counts.values())

    class AdversaryReport(TrainerCallback):
        def on_train_end(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                history = adversary.history
                last = history[-max(1, len(history) // 5):]
                write_json(out_dir / "adversary.json", {
                    "weight": adversary.weight, "groups": adversary.groups,
                    "group_rows": {adversary.groups[g]: n for g, n in sorted(counts.items())},
                    "chance_accuracy": chance,
                    "final_accuracy": sum(h["adversary_accuracy"] for h in last) / len(last) if last else None,
                    "overall_accuracy": (adversary.total["correct"] / adversary.total["seen"]
                                         if adversary.total["seen"] else None),
                    "history": history})

    return AdversaryReport()
