"""The careful-training engine: one Hugging Face Trainer subclass, configured by deftune.

What deftune adds to the stock loop, each a small override or callback:
- token-budget batches of similar-length examples (`batching`), shuffled at the batch level each epoch;
- the loss computed only at trained positions (the vocabulary projection is skipped elsewhere), normalised by the
  number of trained tokens across gradient accumulation and data-parallel ranks;
- extra loss terms (`terms`: L2-SP toward the pretrained weights, the debiasing adversary) with their own
  optimizer groups, logs and checkpoint state; ordinary decay for what no term regularises;
- WSD learning-rate phases; a composite validation score for early stopping;
- a NaN/inf guard, checkpoints marked complete only once fully written, exact resume;
- per-step metrics.jsonl: loss, learning rate, phase, tokens/s, padding share, peak memory, grad norm.
"""

from __future__ import annotations

import json
import logging
import resource
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from transformers import Trainer, TrainerCallback, TrainingArguments

from ..config import TrainingConfig
from ..core.files import write_json
from ..core.precision import Precision
from ..data.render import IGNORE, Rendered, Renderer
from ..errors import DeftuneError
from . import schedule
from .batching import TokenBudgetBatchSampler
from .stopping import Composite
from .terms import LossTerm

log = logging.getLogger(__name__)

COMPLETE = "deftune-complete.json"  # written last into a checkpoint folder: the checkpoint is whole


class TrainingDiverged(DeftuneError):
    """The loss became NaN or infinite."""


class Collator:
    """Pads a list of rendered examples into a batch; padding is masked out of attention and loss.

    With `packing`, the examples are instead concatenated into one row with position ids restarting at each
    example, which transformers turns into a block-diagonal causal mask: no padding, and no attention across
    examples. Each example's first label is masked so no example is trained to follow the one before it.

    When an example's `weight` is not 1, the batch also carries `loss_weights`: each token's example weight,
    aligned with `labels`."""

    def __init__(self, pad_token_id: int, packing: bool = False):
        self.pad, self.packing = pad_token_id, packing

    def __call__(self, examples: list[Rendered]) -> dict[str, torch.Tensor]:
        batch = self._packed(examples) if self.packing else self._padded(examples)
        if any(e.weight != 1.0 for e in examples):
            batch["loss_weights"] = self._token_weights(examples, batch["labels"].shape)
        return batch

    @staticmethod
    def _packed(examples: list[Rendered]) -> dict[str, torch.Tensor]:
        return {
            "input_ids": torch.tensor([[t for e in examples for t in e.input_ids]]),
            "labels": torch.tensor([[t for e in examples for t in [IGNORE, *e.labels[1:]]]]),
            "position_ids": torch.tensor([[p for e in examples for p in range(len(e))]]),
        }

    def _padded(self, examples: list[Rendered]) -> dict[str, torch.Tensor]:
        width = max(len(e) for e in examples)
        ids = torch.full((len(examples), width), self.pad, dtype=torch.long)
        labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(examples), width), dtype=torch.long)
        for row, example in enumerate(examples):
            n = len(example)
            ids[row, :n] = torch.tensor(example.input_ids)
            labels[row, :n] = torch.tensor(example.labels)
            mask[row, :n] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}

    def _token_weights(self, examples: list[Rendered], shape: torch.Size) -> torch.Tensor:
        if self.packing:
            return torch.tensor([[e.weight for e in examples for _ in range(len(e))]])
        return torch.tensor([e.weight for e in examples]).unsqueeze(1).expand(shape).contiguous()


def trained_position_loss(model, inputs: dict, num_items: torch.Tensor | int | None) -> tuple[torch.Tensor, int]:
    """Sum of token cross-entropies at trained positions divided by `num_items` (default: this batch's count).

    The model's vocabulary projection runs only at positions where some row's next token is trained
    (`logits_to_keep` with explicit positions), which for answers of a few tokens skips most of its cost. With
    `loss_weights` in the batch each token's cross-entropy is scaled by its example's weight; the divisor stays the
    token count, so weights averaging 1 (as reweighting makes them) keep the loss's scale."""
    labels = inputs["labels"]
    targets = labels[:, 1:]
    keep = (targets != IGNORE).any(dim=0).nonzero().squeeze(1)
    model_inputs = {k: v for k, v in inputs.items() if k not in ("labels", "loss_weights")}
    logits = model(**model_inputs, logits_to_keep=keep, use_cache=False).logits
    targets = targets[:, keep]
    losses = F.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE, reduction="none"
    )
    if "loss_weights" in inputs:
        losses = losses * inputs["loss_weights"][:, 1:][:, keep].reshape(-1).to(losses.device)
    count = int((targets != IGNORE).sum())
    return losses.sum() / (num_items if num_items is not None else max(count, 1)), count


class CarefulTrainer(Trainer):
    """transformers.Trainer with deftune's batching, loss, loss terms, schedule and validation."""

    def __init__(
        self,
        *args,
        training: TrainingConfig,
        lengths: list[int],
        terms: list[LossTerm],
        validation: Validation,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.training, self.lengths, self.terms, self.validation = training, lengths, terms, validation
        self.loss_is_scaled_for_ga = True  # compute_loss normalises over the accumulated batch itself
        self.counters = {"computed": 0, "real": 0, "trained": 0}
        self.last_log = time.monotonic()

    # ---- batches -------------------------------------------------------------------------------------------
    def get_train_dataloader(self):
        t = self.training
        if t.batching != "token_budget":
            return super().get_train_dataloader()
        sampler = TokenBudgetBatchSampler(
            self.lengths,
            t.max_tokens,
            seed=self.args.seed,
            rank=self.args.process_index,
            world_size=self.args.world_size,
            padded=not t.packing,
        )
        loader = self.accelerator.prepare(
            DataLoader(self.train_dataset, batch_sampler=sampler, collate_fn=self.data_collator, num_workers=0)
        )
        # The sampler already gives each rank its own batches: make accelerate's sharding a passthrough.
        prepared = getattr(loader, "batch_sampler", None)
        if prepared is not None and getattr(prepared, "batch_sampler", None) is sampler:
            prepared.num_processes, prepared.process_index = 1, 0
        return loader

    # ---- loss ----------------------------------------------------------------------------------------------
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss, count = trained_position_loss(model, inputs, num_items_in_batch)
        if model.training:
            if num_items_in_batch is not None and self.args.average_tokens_across_devices:
                loss = loss * self.accelerator.num_processes  # DDP averages gradients over ranks
            for term in self.terms:
                loss = loss + term.loss(model, inputs) / self.current_gradient_accumulation_steps
            if not torch.isfinite(loss):
                raise TrainingDiverged(
                    f"the loss became {loss.item()} at step {self.state.global_step + 1}; training stopped. "
                    f"Last good checkpoint: {latest_checkpoint(Path(self.args.output_dir)) or 'none'}. "
                    "Lower training.learning_rate, or check the data, and resume with --resume."
                )
            self._count(inputs, count)
        return (loss, {}) if return_outputs else loss  # validation needs the loss only

    def _count(self, inputs: dict, trained: int) -> None:
        ids, mask = inputs["input_ids"], inputs.get("attention_mask")
        self.counters["computed"] += ids.numel()
        self.counters["real"] += int(mask.sum()) if mask is not None else ids.numel()
        self.counters["trained"] += trained

    # ---- optimizer and schedule ----------------------------------------------------------------------------
    def create_optimizer(self, model=None):
        if self.optimizer is None:
            cls, kwargs = self.get_optimizer_cls_and_kwargs(self.args, model or self.model)
            self.optimizer = cls(
                parameter_groups(model or self.model, self.terms, self.training.weight_decay), **kwargs
            )
        return self.optimizer

    def create_scheduler(self, num_training_steps, optimizer=None):
        if self.lr_scheduler is None:
            self.lr_scheduler = schedule.create(optimizer or self.optimizer, self.training, num_training_steps)
        return self.lr_scheduler

    # ---- logging -------------------------------------------------------------------------------------------
    def log(self, logs, start_time=None):
        if "loss" in logs:
            now = time.monotonic()
            elapsed = max(now - self.last_log, 1e-9)
            c = self.counters
            logs.update(
                {
                    "phase": self._phase(),
                    "tokens_per_s": c["computed"] / elapsed,
                    "useful_tokens_per_s": c["real"] / elapsed,
                    "trained_tokens": c["trained"],
                    "padding_share": 1 - c["real"] / c["computed"] if c["computed"] else 0.0,
                    "peak_memory_mb": peak_memory_mb(),
                }
            )
            self.counters = {k: 0 for k in c}
            for term in self.terms:
                logs.update(term.logs(self.state.global_step))
            self.last_log = now
        super().log(logs, start_time)

    def _phase(self) -> str | None:
        found = schedule.learning_rate(self.lr_scheduler)
        return found.phases.phase(max(self.state.global_step - 1, 0)) if found else None

    # ---- validation ----------------------------------------------------------------------------------------
    def evaluation_loop(self, *args, **kwargs):
        output = super().evaluation_loop(*args, **kwargs)
        prefix = kwargs.get("metric_key_prefix", "eval")
        loss = output.metrics.get(f"{prefix}_loss")
        if loss is not None and self.model is not None:
            model = self.accelerator.unwrap_model(self.model)
            with self.accelerator.autocast():  # generation in the precision training runs in
                terms = self.validation.composite.terms(model, loss, self.validation.renderer, self.validation.records)
            output.metrics.update({f"{prefix}_{k}": v for k, v in terms.items() if k != "loss"})
        self.last_log = time.monotonic()  # training throughput windows leave evaluation time out
        return output

    # ---- checkpoints ---------------------------------------------------------------------------------------
    def _save_checkpoint(self, model, trial):
        super()._save_checkpoint(model, trial)
        if self.args.should_save:
            folder = Path(self.args.output_dir) / f"checkpoint-{self.state.global_step}"
            for term in self.terms:
                term.save(folder)
            write_json(folder / COMPLETE, {"step": self.state.global_step})


@dataclass
class Validation:
    """What the composite validation score needs besides the loss: its weights and terms, the renderer, and the
    validation records answered by generation for the task metric."""

    composite: Composite
    renderer: Renderer
    records: list


def parameter_groups(model, terms: list[LossTerm], weight_decay: float) -> list[dict]:
    """The optimizer's groups: matrices decay (unless a loss term regularises them itself, as L2-SP does), norms
    and biases never do; then each loss term's own parameters with their settings."""
    undecayed = set().union(*(term.undecayed() for term in terms))
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 and id(p) not in undecayed else no_decay).append(p)
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
        *(group for term in terms for group in term.parameter_groups()),
    ]
    return [g for g in groups if g["params"]]


def peak_memory_mb() -> float:
    """Peak memory of this process so far: CUDA allocations on GPU, resident set size on CPU."""
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def latest_checkpoint(folder: Path) -> Path | None:
    """The newest checkpoint that was completely written (partial ones from a crash are ignored)."""
    done = [p.parent for p in folder.glob(f"checkpoint-*/{COMPLETE}")]
    return max(done, key=lambda p: int(p.name.rsplit("-", 1)[1]), default=None)


class MetricsLog(TrainerCallback):
    """Appends every logged dict (training steps and evaluations) to metrics.jsonl as it happens."""

    def __init__(self, path: Path):
        self.path, self.start = path, time.monotonic()

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            append_jsonl(
                self.path,
                {
                    "step": state.global_step,
                    "epoch": state.epoch,
                    "elapsed_s": round(time.monotonic() - self.start, 3),
                    **logs,
                },
            )


def append_jsonl(path: Path, row: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(row, default=str) + "\n")


def training_args(
    cfg, out: Path, has_validation: bool, accumulation: int, optimizer_steps: int, quiet: bool, compute: Precision
) -> TrainingArguments:
    """The TrainingArguments of a run: steps, precision, evaluation/checkpoint cadence, early-stopping metric."""
    t = cfg.training
    eval_steps = t.eval_steps or max(1, optimizer_steps // 5)  # about five evaluations a run
    stop = has_validation and t.early_stopping.enabled
    return TrainingArguments(
        output_dir=str(out / "checkpoints"),
        num_train_epochs=t.epochs,
        max_steps=t.max_steps,
        learning_rate=t.learning_rate,
        per_device_train_batch_size=t.batch_size,
        per_device_eval_batch_size=cfg.evaluation.batch_size,
        gradient_accumulation_steps=accumulation,
        max_grad_norm=t.max_grad_norm,
        **compute.trainer_flags(),
        activation_checkpointing=t.gradient_checkpointing,
        use_cpu=not torch.cuda.is_available(),
        dataloader_pin_memory=torch.cuda.is_available(),
        logging_steps=t.logging_steps,
        logging_first_step=True,
        eval_strategy="steps" if has_validation else "no",
        eval_steps=eval_steps,
        save_strategy="steps",
        save_steps=eval_steps,
        save_total_limit=t.save_total_limit,
        load_best_model_at_end=stop,
        metric_for_best_model="composite" if stop else None,
        greater_is_better=True if stop else None,
        prediction_loss_only=True,
        report_to=list(t.report_to),
        seed=cfg.run.seed,
        data_seed=cfg.run.seed,
        remove_unused_columns=False,
        disable_tqdm=quiet,
        dataloader_num_workers=0,
        ddp_find_unused_parameters=False,
    )
