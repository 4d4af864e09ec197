"""Adversarial debiasing (Ganin & Lempitsky 2015; Zhang et al. 2018): during fine-tuning an adversary head
predicts the protected attribute from the model's pooled hidden states through a gradient-reversal layer. The head
learns to predict the attribute; the reversed gradient, scaled by `training.adversary.weight`, pushes the model to
make its representations uninformative about it. By default the state pooled is the one at the answer position
(the last prompt token), the one the prediction is read from: debiasing asks the decision not to depend on the
group, while the text itself may still name it (mean pooling over all tokens is the alternative). The head has its
own learning rate and is first warmed up on the base model's states, so the reversed gradient means something from
the first step (a cold head learns too slowly over a short fine-tune to push against).

Reported in metrics.jsonl and train/adversary.json: the adversary's accuracy (it should fall toward the
majority-group rate), and after training a fresh cross-validated probe on held-out rows, for the tuned and the
base model, which measures what is left of the attribute without the adversary's moving target.

A loss term (`LossTerm`): the trainer adds `loss(model, inputs)` once per micro-batch, gives the head its own
optimizer group, logs its accuracy and saves the head with each checkpoint. Rows are matched to their record's group by their tokens (the collator passes no ids), so packing is
not supported."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from ...config import AdversaryConfig
from ...core.files import write_json
from ...data import seeded_subset
from ...data.balance import groups_of
from ...data.render import IGNORE
from ...errors import ConfigError, RunError
from ..engine import Collator
from . import LossTerm

ADVERSARY_WEIGHTS, ADVERSARY_STATE = "adversary.safetensors", "adversary.json"


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


def pool(hidden: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor | None, how: str) -> torch.Tensor:
    """One vector per row: at the answer position (the last prompt token, whose state decides the first answer
    token; the last real token where a row trains nothing) or the mean over real tokens."""
    if how == "mean":
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)
    ends = mask.sum(1)
    if labels is not None:
        trained = labels != IGNORE
        ends = torch.where(trained.any(1), trained.int().argmax(1), ends)
    return hidden[torch.arange(len(hidden), device=hidden.device), (ends - 1).clamp(min=0)]


class Adversary(nn.Module, LossTerm):
    """A two-layer head on pooled last hidden states (`training.adversary.pooling`), behind a gradient-reversal
    layer. With `row_labels` (objective "odds", Zhang et al.'s equality of odds) the head also sees each row's true
    label, so only what the states say about the group beyond the label is pushed out; without, any group
    information is (demographic parity)."""

    def __init__(
        self,
        model,
        groups: list[str],
        row_groups: dict[tuple[int, ...], int],
        *,
        weight: float,
        hidden: int,
        learning_rate: float = 1e-3,
        pooling: str = "answer",
        row_labels: dict[tuple[int, ...], int] | None = None,
        n_labels: int = 0,
    ):
        super().__init__()
        size = model.config.hidden_size
        self.groups, self.row_groups, self.weight, self.pooling = groups, row_groups, weight, pooling
        self.learning_rate = learning_rate
        self.row_labels, self.n_labels = row_labels, n_labels if row_labels else 0
        # normalised input: hidden states have a few huge dimensions that would swamp a fresh head
        self.norm = nn.LayerNorm(size)
        self.head = nn.Sequential(nn.Linear(size + self.n_labels, hidden), nn.ReLU(), nn.Linear(hidden, len(groups)))
        self.to(next(model.parameters()).device)
        self._hidden: torch.Tensor | None = None
        decoder_of(model).register_forward_hook(self._capture)
        self.window = Counter()  # correct / seen / loss since the last log
        self.total = Counter()
        self.history: list[dict] = []
        self.warmup: dict | None = None

    def _capture(self, module, args, output):
        self._hidden = output[0] if isinstance(output, tuple) else output.last_hidden_state

    def forward(self, pooled: torch.Tensor, keys: list[tuple[int, ...]]) -> torch.Tensor:
        """Group logits from pooled states (already through the reversal layer) and, for "odds", the labels."""
        features = self.norm(pooled)
        if self.n_labels:
            index = torch.tensor([self.row_labels.get(k, -1) for k in keys], device=pooled.device)
            onehot = F.one_hot(index.clamp(min=0), self.n_labels).to(features.dtype) * (index >= 0).unsqueeze(1)
            features = torch.cat([features, onehot], dim=1)
        return self.head(features)

    @staticmethod
    def keys(input_ids: torch.Tensor, mask: torch.Tensor) -> list[tuple[int, ...]]:
        """Each row's real tokens: how rows are matched to their record (the collator passes no ids)."""
        return [tuple(ids[m.bool()].tolist()) for ids, m in zip(input_ids, mask)]

    def targets(self, keys: list[tuple[int, ...]], device) -> torch.Tensor:
        """Each row's group index (IGNORE where its record has no group)."""
        return torch.tensor([self.row_groups.get(k, IGNORE) for k in keys], device=device)

    def loss(self, model, inputs: dict) -> torch.Tensor:
        """The adversary's cross-entropy on the hidden states of the forward pass just run (0 when no row of the
        batch has a group)."""
        ids = inputs["input_ids"]
        mask = inputs.get("attention_mask", torch.ones_like(ids))
        keys = self.keys(ids, mask)
        target = self.targets(keys, ids.device)
        hidden = self._hidden
        if hidden is None or not (target != IGNORE).any():
            return torch.zeros((), device=ids.device)
        pooled = pool(hidden, mask, inputs.get("labels"), self.pooling)
        self.to(pooled.device)  # the trainer may have moved the model since the head was built
        logits = self(reverse_gradient(pooled.float(), self.weight), keys)
        loss = F.cross_entropy(logits, target, ignore_index=IGNORE)
        known = target != IGNORE
        correct, seen = int((logits.argmax(-1) == target)[known].sum()), int(known.sum())
        for counter in (self.window, self.total):
            counter.update({"correct": correct, "seen": seen})
        self.window["loss"] += float(loss.detach()) * seen
        return loss

    def parameter_groups(self) -> list[dict]:
        return [{"params": list(self.parameters()), "weight_decay": 0.0, "lr": self.learning_rate}]

    def logs(self, step: int) -> dict:
        """Accuracy and loss since the last call, for the log of `step` (also kept in `history`)."""
        seen = self.window["seen"]
        found = (
            {"adversary_accuracy": self.window["correct"] / seen, "adversary_loss": self.window["loss"] / seen}
            if seen
            else {}
        )
        self.window = Counter()
        if found:
            self.history.append({"step": step, **found})
        return found

    def warm_up(self, model, rows: list, *, epochs: int, learning_rate: float, seed: int, batch_size: int) -> dict:
        """Fit the head on the model's (frozen) states of `rows` before fine-tuning starts, so the reversed
        gradient carries information from the first step; returns the rows, epochs and the head's accuracy."""
        device = next(self.parameters()).device
        states = torch.tensor(_states(model, rows, self.pooling, batch_size), device=device)
        keys = [tuple(r.input_ids) for r in rows]
        targets = self.targets(keys, device)
        order = torch.Generator().manual_seed(seed)
        optimizer = torch.optim.AdamW(self.parameters(), lr=learning_rate, weight_decay=0.0)
        for _ in range(epochs):
            for batch in torch.randperm(len(rows), generator=order).split(32):
                loss = F.cross_entropy(
                    self(states[batch.to(device)], [keys[i] for i in batch]), targets[batch.to(device)]
                )
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        with torch.no_grad():
            accuracy = float((self(states, keys).argmax(-1) == targets).float().mean())
        self.warmup = {"rows": len(rows), "epochs": epochs, "accuracy": accuracy}
        return self.warmup

    # ---- checkpoints: the head's weights and its log travel with the trainer's checkpoints -------------------
    def save(self, folder: Path) -> None:
        save_file(
            {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}, str(folder / ADVERSARY_WEIGHTS)
        )
        write_json(folder / ADVERSARY_STATE, {"history": self.history, "total": dict(self.total)})

    def restore(self, folder: Path) -> None:
        if not (folder / ADVERSARY_WEIGHTS).exists():
            raise RunError(
                f"{folder}: no {ADVERSARY_WEIGHTS} (the checkpoint was saved without the adversary); "
                "resume with the training.adversary settings it was trained with"
            )
        self.load_state_dict(load_file(str(folder / ADVERSARY_WEIGHTS)))
        state = json.loads((folder / ADVERSARY_STATE).read_text())
        self.history, self.total = state["history"], Counter(state["total"])


@dataclass(frozen=True)
class Grouping:
    """What the adversary and its probe read: the protected attribute, the seed and the batch size of states."""

    attribute: str
    seed: int
    batch_size: int


def build(
    sc: AdversaryConfig, grouping: Grouping, model, rendered: list, records: list, *, packing: bool, warm: bool = True
) -> Adversary | None:
    """The adversary for a run (None unless `training.adversary` is enabled), warmed up on the model's states of
    a seeded subset of the grouped training rows when `warm` and `warmup_epochs` (a resumed run restores its head
    instead)."""
    if not sc.enabled:
        return None
    if packing:
        raise ConfigError(
            "adversarial debiasing needs one example per row; set training.packing=false",
            field="training.adversary.weight",
        )
    by_id = _groups_by_id(records, grouping.attribute)
    names = sorted({g for g in by_id.values() if g is not None})
    if len(names) < 2:
        raise ConfigError(
            f"adversarial debiasing needs at least two '{grouping.attribute}' groups in the training "
            f"data (found {names or 'none'}); set group fields or data.group_attribute",
            field="data.group_attribute",
        )
    row_groups = {tuple(r.input_ids): names.index(by_id[r.id]) for r in rendered if by_id.get(r.id) is not None}
    row_labels, labels = None, []
    if sc.objective == "odds":
        label_of = {r.id: r.label for r in records}
        labels = sorted({y for y in label_of.values() if y is not None})
        if len(labels) < 2:
            raise ConfigError(
                "the 'odds' objective gives the adversary each example's label: it needs "
                "classification data (or use training.adversary.objective=parity)",
                field="training.adversary.objective",
            )
        row_labels = {
            tuple(r.input_ids): labels.index(label_of[r.id]) for r in rendered if label_of.get(r.id) is not None
        }
    adversary = Adversary(
        model,
        names,
        row_groups,
        weight=sc.weight,
        hidden=sc.hidden,
        learning_rate=sc.learning_rate,
        pooling=sc.pooling,
        row_labels=row_labels,
        n_labels=len(labels),
    )
    if warm and sc.warmup_epochs:
        rows = _grouped_rows(rendered, by_id, sc.examples, grouping.seed)
        adversary.warm_up(
            model,
            rows,
            epochs=sc.warmup_epochs,
            learning_rate=sc.learning_rate,
            seed=grouping.seed,
            batch_size=grouping.batch_size,
        )
    return adversary


def _groups_by_id(records: list, attribute: str) -> dict[str, str | None]:
    return dict(zip((r.id for r in records), groups_of(records, attribute)))


def _grouped_rows(rendered: list, by_id: dict[str, str | None], examples: int, seed: int) -> list:
    """The rows whose record has a group: a seeded subset of `examples`."""
    return seeded_subset([r for r in rendered if by_id.get(r.id) is not None], examples, seed)


@torch.no_grad()
def _states(model, rows: list, pooling: str, batch_size: int) -> np.ndarray:
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(rows), batch_size):
        batch = Collator(0)(rows[i : i + batch_size])
        hidden = model(
            input_ids=batch["input_ids"].to(device),
            attention_mask=batch["attention_mask"].to(device),
            output_hidden_states=True,
            use_cache=False,
        ).hidden_states[-1]
        out.append(
            pool(hidden, batch["attention_mask"].to(device), batch["labels"].to(device), pooling).float().cpu().numpy()
        )
    model.train(was_training)
    return np.concatenate(out)


def _cv_accuracy(states: np.ndarray, targets: list[str], seed: int) -> float:
    folds = StratifiedKFold(n_splits=min(5, min(Counter(targets).values())), shuffle=True, random_state=seed)
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return float(cross_val_score(classifier, states, targets, cv=folds).mean())


def probe(model, rendered: list, records: list, sc: AdversaryConfig, grouping: Grouping) -> dict:
    """How much of the protected attribute a fresh probe still reads from the pooled states: a logistic
    regression with stratified k-fold cross-validation on the given rows that have a group (at most
    `examples`, seeded), for the tuned model and, for PEFT methods, the base model (adapter
    disabled). Unlike the adversary's own accuracy, it is not confounded by the head chasing a moving target."""
    by_id = _groups_by_id(records, grouping.attribute)
    rows = _grouped_rows(rendered, by_id, sc.examples, grouping.seed)
    targets = [by_id[r.id] for r in rows]
    counts = Counter(targets)
    if len(counts) < 2 or min(counts.values()) < 2:
        return {"rows": len(rows), "groups": dict(counts), "skipped": "fewer than two groups with two rows each"}
    label_of = {r.id: r.label for r in records}
    found = {
        "rows": len(rows),
        "groups": dict(sorted(counts.items())),
        "chance_accuracy": max(counts.values()) / len(rows),
        "tuned_accuracy": _cv_accuracy(_states(model, rows, sc.pooling, grouping.batch_size), targets, grouping.seed),
    }
    if hasattr(model, "disable_adapter"):
        with model.disable_adapter():
            base = _states(model, rows, sc.pooling, grouping.batch_size)
        found["base_accuracy"] = _cv_accuracy(base, targets, grouping.seed)
    if len({label_of.get(r.id) for r in rows} - {None}) > 1:  # what the label alone tells of the group
        onehot = pd.get_dummies(pd.Series([str(label_of.get(r.id)) for r in rows])).to_numpy(dtype=float)
        found["label_only_accuracy"] = _cv_accuracy(onehot, targets, grouping.seed)
    return found


def write_report(
    adversary: Adversary,
    model,
    held_out: tuple[list, list],
    train: tuple[list, list],
    sc: AdversaryConfig,
    grouping: Grouping,
    path: Path,
) -> dict:
    """adversary.json: the head's accuracy over the last fifth of the logged steps against the majority-group
    (chance) rate, the logged history, and the probe on held-out rows (validation; the training rows when the
    held-out ones lack two groups)."""
    counts = Counter(adversary.row_groups.values())
    history = adversary.history
    last = history[-max(1, len(history) // 5) :]
    found = probe(model, *held_out, sc, grouping) | {"on": "validation"}
    if "skipped" in found:
        found = probe(model, *train, sc, grouping) | {"on": "train"}
    report = {
        "weight": adversary.weight,
        "pooling": adversary.pooling,
        "warmup": adversary.warmup,
        "objective": "odds" if adversary.n_labels else "parity",
        "groups": adversary.groups,
        "group_rows": {adversary.groups[g]: n for g, n in sorted(counts.items())},
        "chance_accuracy": max(counts.values()) / sum(counts.values()),
        "final_accuracy": sum(h["adversary_accuracy"] for h in last) / len(last) if last else None,
        "overall_accuracy": (adversary.total["correct"] / adversary.total["seen"] if adversary.total["seen"] else None),
        "probe": found,
        "history": history,
    }
    write_json(path, report)
    return report
