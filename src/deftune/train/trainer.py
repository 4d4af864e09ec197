"""The careful-training engine: one Hugging Face Trainer, configured by deftune.

What deftune adds to the stock loop, each a small override or callback:
- token-budget batches of similar-length examples (`batching`), shuffled at the batch level each epoch;
- the loss computed only at trained positions (the vocabulary projection is skipped elsewhere), normalised by the
  number of trained tokens across gradient accumulation and data-parallel ranks;
- L2-SP toward the pretrained weights for fully trained matrices, ordinary decay for adapter parameters;
- dropout targeted at attention; WSD learning-rate phases;
- early stopping on a composite validation score, best checkpoint restored;
- a NaN/inf guard, checkpoints marked complete only once fully written, exact resume;
- per-step metrics.jsonl: loss, learning rate, phase, tokens/s, padding share, peak memory, grad norm.
"""

from __future__ import annotations

import json
import logging
import math
import os
import resource
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from .. import data
from ..config import Config
from ..core import models, runs
from ..core.files import write_json
from ..core.precision import Precision
from ..core.precision import choose as choose_precision
from ..data.render import IGNORE, Rendered
from ..errors import DataError, DeftuneError, ModelError, RunError
from . import methods, runtime, schedule
from .batching import TokenBudgetBatchSampler
from .budget import TimeBudget
from .regularize import L2SP, targeted_dropout
from .stopping import Composite

log = logging.getLogger(__name__)

COMPLETE = "deftune-complete.json"  # written last into a checkpoint folder: the checkpoint is whole


class TrainingDiverged(DeftuneError):
    """The loss became NaN or infinite."""


@dataclass
class TrainResult:
    run_dir: str
    output_dir: str  # the adapter (PEFT-style folder) or the full model (safetensors)
    method: str
    examples: dict[str, int]
    dropped_too_long: dict[str, int]
    max_length: int
    epochs: float
    steps: int
    parameters: dict[str, float]
    first_loss: float | None
    last_loss: float | None
    validation_loss: float | None
    seconds: float
    batching: dict = field(default_factory=dict)
    early_stopping: dict = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=dict)
    precision: dict = field(default_factory=dict)  # core.precision.Precision: what matmuls ran in, and why
    time_budget: dict | None = None  # budget.BudgetOutcome: whether training.time_budget cut the run
    estimated_seconds: float | None = None  # runtime's estimate before training, beside `seconds`

    def to_json(self) -> dict:
        return asdict(self)


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
        return {"input_ids": torch.tensor([[t for e in examples for t in e.input_ids]]),
                "labels": torch.tensor([[t for e in examples for t in [IGNORE, *e.labels[1:]]]]),
                "position_ids": torch.tensor([[p for e in examples for p in range(len(e))]])}

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


def example_weights(records) -> dict[str, float] | None:
    """Each training record's loss weight from its `meta.weight` (as `deftune balance` and safety.balance=reweight
    write them), or None when no record has one."""
    if not any("weight" in r.meta for r in records):
        return None
    weights = {}
    for r in records:
        w = r.meta.get("weight", 1.0)
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
            raise DataError(f"expected a finite number >= 0, got {w!r}", file=r.source or r.id, field="meta.weight")
        weights[r.id] = float(w)
    return weights


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
    losses = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1),
                             ignore_index=IGNORE, reduction="none")
    if "loss_weights" in inputs:
        losses = losses * inputs["loss_weights"][:, 1:][:, keep].reshape(-1).to(losses.device)
    count = int((targets != IGNORE).sum())
    return losses.sum() / (num_items if num_items is not None else max(count, 1)), count


def _careful_trainer_class():
    from transformers import Trainer

    class CarefulTrainer(Trainer):
        """transformers.Trainer with deftune's batching, loss, regularisation, schedule and validation."""

        def __init__(self, *args, cfg: Config, lengths: list[int], l2sp: L2SP | None, composite: Composite,
                     renderer, task_records, adversary=None, **kwargs):
            super().__init__(*args, **kwargs)
            self.cfg, self.lengths, self.l2sp, self.composite = cfg, lengths, l2sp, composite
            self.adversary = adversary  # deftune.safety.debias.Adversary: an extra loss term with its own head
            self.renderer, self.task_records = renderer, task_records
            self.loss_is_scaled_for_ga = True  # compute_loss normalises over the accumulated batch itself
            self.counters = {"computed": 0, "real": 0, "trained": 0}
            self.last_log = time.monotonic()

        # ---- batches -------------------------------------------------------------------------------------
        def get_train_dataloader(self):
            if self.cfg.training.batching != "token_budget":
                return super().get_train_dataloader()
            from torch.utils.data import DataLoader

            sampler = TokenBudgetBatchSampler(self.lengths, self.cfg.training.max_tokens, seed=self.args.seed,
                                              rank=self.args.process_index, world_size=self.args.world_size,
                                              padded=not self.cfg.training.packing)
            loader = self.accelerator.prepare(DataLoader(self.train_dataset, batch_sampler=sampler,
                                                         collate_fn=self.data_collator, num_workers=0))
            # The sampler already gives each rank its own batches: make accelerate's sharding a passthrough.
            prepared = getattr(loader, "batch_sampler", None)
            if prepared is not None and getattr(prepared, "batch_sampler", None) is sampler:
                prepared.num_processes, prepared.process_index = 1, 0
            return loader

        # ---- loss ----------------------------------------------------------------------------------------
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            loss, count = trained_position_loss(model, inputs, num_items_in_batch)
            if model.training:
                if num_items_in_batch is not None and self.args.average_tokens_across_devices:
                    loss = loss * self.accelerator.num_processes  # DDP averages gradients over ranks
                if self.l2sp:
                    loss = loss + self.l2sp.penalty() / self.current_gradient_accumulation_steps
                if self.adversary is not None:
                    loss = loss + self.adversary.loss(inputs) / self.current_gradient_accumulation_steps
                if not torch.isfinite(loss):
                    raise TrainingDiverged(
                        f"the loss became {loss.item()} at step {self.state.global_step + 1}; training stopped. "
                        f"Last good checkpoint: {latest_checkpoint(Path(self.args.output_dir)) or 'none'}. "
                        "Lower training.learning_rate, or check the data, and resume with --resume.")
                ids = inputs["input_ids"]
                mask = inputs.get("attention_mask")
                self.counters["computed"] += ids.numel()
                self.counters["real"] += int(mask.sum()) if mask is not None else ids.numel()
                self.counters["trained"] += count
            return (loss, {}) if return_outputs else loss  # validation needs the loss only

        # ---- optimizer and schedule ---------------------------------------------------------------------
        def create_optimizer(self, model=None):
            if self.optimizer is None:
                anchored = {id(p) for p in self.l2sp.params.values()} if self.l2sp else set()
                decay, no_decay = [], []
                plain = self.cfg.training.regularization == "plain"
                for p in (model or self.model).parameters():
                    if not p.requires_grad:
                        continue
                    # Norms and biases never decay; L2-SP replaces decay for anchored (fully trained) weights.
                    (decay if p.ndim >= 2 and (plain or id(p) not in anchored) else no_decay).append(p)
                groups = [{"params": decay, "weight_decay": self.cfg.training.weight_decay},
                          {"params": no_decay, "weight_decay": 0.0}]
                if self.adversary is not None:  # a fresh head: its own learning rate, no decay
                    groups.append({"params": list(self.adversary.parameters()), "weight_decay": 0.0,
                                   "lr": self.cfg.safety.adversary_learning_rate})
                cls, kwargs = self.get_optimizer_cls_and_kwargs(self.args, model or self.model)
                self.optimizer = cls([g for g in groups if g["params"]], **kwargs)
            return self.optimizer

        def create_scheduler(self, num_training_steps, optimizer=None):
            if self.lr_scheduler is None:
                self.lr_scheduler = schedule.create(optimizer or self.optimizer, self.cfg.training,
                                                    num_training_steps)
            return self.lr_scheduler

        # ---- logging -------------------------------------------------------------------------------------
        def log(self, logs, start_time=None):
            if "loss" in logs:
                now = time.monotonic()
                elapsed = max(now - self.last_log, 1e-9)
                c = self.counters
                logs.update({
                    "phase": self._phase(),
                    "tokens_per_s": c["computed"] / elapsed, "useful_tokens_per_s": c["real"] / elapsed,
                    "trained_tokens": c["trained"],
                    "padding_share": 1 - c["real"] / c["computed"] if c["computed"] else 0.0,
                    "peak_memory_mb": peak_memory_mb(),
                })
                self.counters = {k: 0 for k in c}
                if self.adversary is not None:
                    logs.update(self.adversary.take_window(self.state.global_step))
                self.last_log = now
            super().log(logs, start_time)

        def _phase(self) -> str | None:
            found = schedule.learning_rate(self.lr_scheduler)
            return found.phases.phase(max(self.state.global_step - 1, 0)) if found else None

        # ---- validation ----------------------------------------------------------------------------------
        def evaluation_loop(self, *args, **kwargs):
            output = super().evaluation_loop(*args, **kwargs)
            prefix = kwargs.get("metric_key_prefix", "eval")
            loss = output.metrics.get(f"{prefix}_loss")
            if loss is not None and self.model is not None:
                model = self.accelerator.unwrap_model(self.model)
                with self.accelerator.autocast():  # generation in the precision training runs in
                    terms = self.composite.terms(model, loss, self.renderer, self.task_records)
                output.metrics.update({f"{prefix}_{k}": v for k, v in terms.items() if k != "loss"})
            self.last_log = time.monotonic()  # training throughput windows leave evaluation time out
            return output

        # ---- checkpoints ---------------------------------------------------------------------------------
        def _save_checkpoint(self, model, trial):
            super()._save_checkpoint(model, trial)
            if self.args.should_save:
                folder = Path(self.args.output_dir) / f"checkpoint-{self.state.global_step}"
                if self.adversary is not None:
                    self.adversary.save(folder)
                write_json(folder / COMPLETE, {"step": self.state.global_step})

    return CarefulTrainer


def peak_memory_mb() -> float:
    """Peak memory of this process so far: CUDA allocations on GPU, resident set size on CPU."""
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def latest_checkpoint(folder: Path) -> Path | None:
    """The newest checkpoint that was completely written (partial ones from a crash are ignored)."""
    done = [p.parent for p in folder.glob(f"checkpoint-*/{COMPLETE}")]
    return max(done, key=lambda p: int(p.name.rsplit("-", 1)[1]), default=None)


@dataclass
class BatchPlan:
    """How the training data is cut into micro-batches and optimizer steps on each rank."""
    micro_batches: int  # per epoch and rank
    examples_per_micro: float
    tokens_per_micro: float  # computed (padded) tokens
    accumulation: int

    @classmethod
    def of(cls, cfg: Config, lengths: list[int], world_size: int) -> "BatchPlan":
        t = cfg.training
        if t.batching == "token_budget":
            sampler = TokenBudgetBatchSampler(lengths, t.max_tokens, world_size=world_size, padded=not t.packing)
            batches = sampler.batches(0)
        else:
            batches = [list(range(i, min(i + t.batch_size, len(lengths))))
                       for i in range(0, len(lengths), t.batch_size)]
        tokens = sum(sum(lengths[i] for i in b) if t.packing else max(lengths[i] for i in b) * len(b)
                     for b in batches)
        per_micro_examples, per_micro_tokens = len(lengths) / len(batches), tokens / len(batches)
        if t.effective_batch_tokens:
            accumulation = math.ceil(t.effective_batch_tokens / (per_micro_tokens * world_size))
        elif t.effective_batch_examples:
            accumulation = math.ceil(t.effective_batch_examples / (per_micro_examples * world_size))
        else:
            accumulation = t.gradient_accumulation
        return cls(math.ceil(len(batches) / world_size), per_micro_examples, per_micro_tokens, max(1, accumulation))

    def optimizer_steps(self, cfg: Config) -> int:
        if cfg.training.max_steps > 0:
            return cfg.training.max_steps
        return max(1, math.ceil(cfg.training.epochs * self.micro_batches / self.accumulation))


def _training_args(cfg: Config, out: Path, has_validation: bool, plan: BatchPlan, quiet: bool,
                   compute: Precision):
    from transformers import TrainingArguments

    t = cfg.training
    eval_steps = t.eval_steps or max(1, plan.optimizer_steps(cfg) // 5)  # about five evaluations a run
    stop = has_validation and t.early_stopping.enabled
    return TrainingArguments(
        output_dir=str(out / "checkpoints"),
        num_train_epochs=t.epochs, max_steps=t.max_steps, learning_rate=t.learning_rate,
        per_device_train_batch_size=t.batch_size, per_device_eval_batch_size=cfg.evaluation.batch_size,
        gradient_accumulation_steps=plan.accumulation, max_grad_norm=t.max_grad_norm,
        **compute.trainer_flags(), activation_checkpointing=t.gradient_checkpointing,
        use_cpu=not torch.cuda.is_available(), dataloader_pin_memory=torch.cuda.is_available(),
        logging_steps=t.logging_steps, logging_first_step=True,
        eval_strategy="steps" if has_validation else "no", eval_steps=eval_steps,
        save_strategy="steps", save_steps=eval_steps, save_total_limit=t.save_total_limit,
        load_best_model_at_end=stop, metric_for_best_model="composite" if stop else None,
        greater_is_better=True if stop else None, prediction_loss_only=True,
        report_to=list(t.report_to), seed=cfg.run.seed, data_seed=cfg.run.seed,
        remove_unused_columns=False, disable_tqdm=quiet, dataloader_num_workers=0,
        ddp_find_unused_parameters=False,
    )


def _smaller_batches(cfg: Config) -> Config | None:
    """The config with micro-batches halved and gradient accumulation doubled (same effective batch), or None
    when they cannot shrink further."""
    t = cfg.training
    if t.batching == "token_budget":
        if t.max_tokens < 2 * 64:
            return None
        change = {"max_tokens": t.max_tokens // 2}
    else:
        if t.batch_size == 1:
            return None
        change = {"batch_size": t.batch_size // 2}
    if not (t.effective_batch_tokens or t.effective_batch_examples):
        change["gradient_accumulation"] = t.gradient_accumulation * 2
    return cfg.model_copy(update={"training": t.model_copy(update=change)})


def _fit_memory(cfg: Config, trained_per_row: int | None) -> tuple[Config, dict]:
    """The memory plan before training (model loaded): a token budget estimated not to fit in the memory left is
    lowered to the largest that fits (gradient accumulation raised to keep the effective batch); any other run
    estimated not to fit is warned about. Returns the config to train with and the plan's figures."""
    from . import plan

    budget = plan.memory_budget()
    try:
        estimate = plan.estimate(cfg, trained_per_row=trained_per_row, timed=False)
    except ModelError as exc:  # an architecture the plan does not model
        log.info("no memory plan: %s", exc)
        return cfg, {"skipped": str(exc)}
    needed = estimate.peak_bytes - estimate.memory_bytes["weights"]
    found = {"estimated_peak_bytes": estimate.peak_bytes, "still_needed_bytes": needed, "available_bytes": budget,
             "max_tokens_lowered_from": None}
    if needed <= budget:
        return cfg, found
    t = cfg.training
    accumulating = cfg.model_copy(update={"training": t.model_copy(  # smaller micro-batches accumulate gradients
        update={"gradient_accumulation": max(2, t.gradient_accumulation)})})
    tokens = (plan.suggest_max_tokens(accumulating, budget, trained_per_row=trained_per_row, loaded=True)
              if t.batching == "token_budget" else 0)
    if not tokens:
        log.warning("memory plan: this run needs about %.1f GiB more at its peak but %.1f GiB are available; it will "
                    "likely run out of memory (try gradient checkpointing, bf16, a PEFT method or a shorter "
                    "data.max_length)", needed / 2**30, budget / 2**30)
        return cfg, found
    change = {"max_tokens": tokens}
    if not (t.effective_batch_tokens or t.effective_batch_examples):
        change["gradient_accumulation"] = t.gradient_accumulation * math.ceil(t.max_tokens / tokens)
    log.warning("memory plan: %d tokens per micro-batch need about %.1f GiB, %.1f GiB are available: training with "
                "%d tokens per micro-batch", t.max_tokens, needed / 2**30, budget / 2**30, tokens)
    found["max_tokens_lowered_from"] = t.max_tokens
    return cfg.model_copy(update={"training": t.model_copy(update=change)}), found


def train(cfg: Config, *, overwrite: bool = False, resume: bool = False, quiet: bool = False,
          retention_drop=None, callbacks=()) -> TrainResult:
    """Fine-tune `cfg.model` on `cfg.data` with `cfg.method`; artifacts go to <run>/train/.

    On out-of-memory the micro-batch is halved and gradient accumulation doubled, and training starts again.
    With `resume`, continue the named run from its last complete checkpoint. `retention_drop` (model → drop
    versus the base model) adds the retention term to the composite validation score; without it, a positive
    training.early_stopping.retention_weight measures the drop on evaluation.retention_benchmarks. `callbacks`:
    extra transformers TrainerCallbacks (e.g. a sweep's pruning); one whose `abandoned` is true when training
    ends means the run will not be used, so the final evaluation and the save are skipped (output_dir is "")."""
    backoffs = []
    while True:
        try:
            result = _train(cfg, overwrite=overwrite, resume=resume, quiet=quiet, retention_drop=retention_drop,
                            extra_callbacks=callbacks)
            result.batching["oom_backoffs"] = backoffs
            return result
        except torch.OutOfMemoryError:
            smaller = _smaller_batches(cfg)
            if smaller is None:
                raise DeftuneError("out of memory even with the smallest micro-batch; use gradient "
                                   "checkpointing, bf16, a shorter data.max_length or a PEFT method") from None
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            backoffs.append(smaller.training.max_tokens if smaller.training.batching == "token_budget"
                            else smaller.training.batch_size)
            log.warning("out of memory: retrying with smaller micro-batches (%s)", backoffs[-1])
            cfg, overwrite = smaller, True


def _train(cfg: Config, *, overwrite: bool, resume: bool, quiet: bool, retention_drop,
           extra_callbacks) -> TrainResult:
    from transformers import EarlyStoppingCallback, set_seed

    started = time.monotonic()
    set_seed(cfg.run.seed)
    compute = choose_precision(cfg.model.precision)
    if resume and not cfg.run.name:
        raise RunError("--resume needs run.name: the run to continue")
    splits = data.load_splits(cfg.data, cfg.run.seed)  # bad data fails before anything is written
    run_dir = runs.prepare(cfg, "train", overwrite=overwrite or resume)
    out = run_dir / "train"
    checkpoint = latest_checkpoint(out / "checkpoints") if resume else None
    if resume and checkpoint is None:
        raise RunError(f"{out / 'checkpoints'}: no complete checkpoint to resume from")
    metrics_path = out / "metrics.jsonl"
    if not resume:
        metrics_path.unlink(missing_ok=True)

    if cfg.data.augment.enabled:  # variants of training records only, written to <run>/augment/
        from ..data.augment import for_training

        splits = for_training(splits, cfg, run_dir)
    if cfg.safety.balance != "none" or cfg.safety.counterfactual:  # after augmentation: variants are balanced too
        from ..safety.balance import for_training as balanced

        splits = balanced(splits, cfg, run_dir)
    weights = example_weights(splits["train"].records)
    write_json(run_dir / "data" / "split.json",
                    {name: [r.id for r in ds.records] for name, ds in splits.items()})
    model, tokenizer = models.load(cfg.model.spec, dtype=cfg.model.dtype, revision=cfg.model.revision,
                                   trust_remote_code=cfg.model.trust_remote_code,
                                   quantize_4bit=cfg.method.name == "qlora")
    renderer = data.renderer_for(tokenizer, cfg.data, *splits.values())
    train_set, train_stats = renderer.render_all(splits["train"].records)
    if weights:
        train_set = [replace(r, weight=weights[r.id]) for r in train_set]
    val_set, val_stats = renderer.render_all(splits["validation"].records) if len(splits["validation"]) else ([], None)

    es = cfg.training.early_stopping
    if retention_drop is None and es.enabled and es.retention_weight and len(splits["validation"]):
        from ..evaluate.retention import drop_tracker

        log.info("retention: measuring the base model on %s", ", ".join(cfg.evaluation.retention_benchmarks))
        retention_drop = drop_tracker(model, tokenizer, cfg.evaluation, es.retention_questions, cfg.run.seed)
    targeted_dropout(model, cfg.training.dropout)
    base_params = {id(p) for p in model.parameters()}
    model = methods.apply(model, cfg.method, cfg.training.dropout)
    if cfg.training.gradient_checkpointing:
        model.enable_input_require_grads()
    counts = methods.count_parameters(model)
    l2sp = None
    if cfg.training.regularization == "l2sp":
        l2sp = L2SP([(n, p) for n, p in model.named_parameters() if id(p) in base_params], cfg.training.l2sp)
    composite = Composite(cfg.training.early_stopping, retention_drop)
    from ..safety import debias

    adversary = debias.build(cfg, model, train_set, splits["train"].records, warm=checkpoint is None)
    kept_ids = {r.id for r in val_set}
    task_records = [r for r in splits["validation"].records
                    if r.id in kept_ids][:cfg.training.early_stopping.task_examples]

    cfg, memory = _fit_memory(cfg, max((r.n_trained for r in train_set), default=None))
    plan = BatchPlan.of(cfg, [len(r) for r in train_set], int(os.environ.get("WORLD_SIZE", "1")))
    args = _training_args(cfg, out, bool(val_set), plan, quiet, compute)
    estimated = runtime.estimate(
        cfg, train_lengths=[len(r) for r in train_set], validation_lengths=[len(r) for r in val_set],
        prompt_tokens=_mean([len(r) - r.n_trained for r in val_set]) or 0.0, test_examples=0,
        labels=len(renderer.labels), trained_per_row=max((r.n_trained for r in train_set), default=None),
        stages=("train",))
    log.info("%s", estimated.describe())
    if adversary is not None and checkpoint is not None:
        adversary.restore(checkpoint)
    callbacks = [_metrics_callback(metrics_path)]
    budget = (TimeBudget(cfg.training.time_budget_seconds, cfg.training.decay)
              if cfg.training.time_budget is not None else None)
    if budget:
        callbacks.append(budget)
    callbacks.extend(extra_callbacks)
    if args.load_best_model_at_end:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=es.patience,
                                               early_stopping_threshold=es.min_delta))
    log.info("method %s: %s; precision %s", cfg.method.name, counts, compute)
    log.info("training on %d examples (%d validation), max length %d tokens: %d micro-batches of ~%.1f examples "
             "(%.0f tokens) per epoch, accumulation %d, %d optimizer steps; composite weights %s",
             len(train_set), len(val_set), cfg.data.max_length, plan.micro_batches, plan.examples_per_micro,
             plan.tokens_per_micro, plan.accumulation, plan.optimizer_steps(cfg), composite.weights())

    trainer = _careful_trainer_class()(
        model=model, args=args, train_dataset=train_set, eval_dataset=val_set or None,
        data_collator=Collator(tokenizer.pad_token_id, packing=cfg.training.packing), callbacks=callbacks, cfg=cfg,
        lengths=[len(r) for r in train_set], l2sp=l2sp, composite=composite, renderer=renderer,
        task_records=task_records, adversary=adversary)
    if quiet:  # with progress bars off, transformers would print every log dict instead
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    if trainer.args.process_index == 0:
        _append(metrics_path, {"event": "start", "method": cfg.method.name, "parameters": asdict(counts) | {
            "share": counts.share}, "precision": compute.to_json(), "composite_weights": composite.weights(), "resumed_from": str(checkpoint or "")})
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    abandoned = any(getattr(c, "abandoned", False) for c in extra_callbacks)
    final = _final_evaluation(trainer) if val_set and not abandoned else {}
    if adversary is not None and trainer.args.process_index == 0 and not abandoned:
        debias.write_report(adversary, trainer.accelerator.unwrap_model(trainer.model),
                            (val_set, splits["validation"].records), (train_set, splits["train"].records), cfg,
                            out / "adversary.json")

    output_dir = "" if abandoned else methods.save(trainer.accelerator.unwrap_model(trainer.model), cfg.method, out)
    if output_dir:
        tokenizer.save_pretrained(output_dir)
    rows = [json.loads(line) for line in metrics_path.read_text().splitlines()]
    losses = [row["loss"] for row in rows if "loss" in row]
    result = TrainResult(
        run_dir=str(run_dir), output_dir=str(output_dir), method=cfg.method.name,
        examples={"train": len(train_set), "validation": len(val_set), "test": len(splits["test"])},
        dropped_too_long={"train": len(train_stats.too_long),
                          "validation": len(val_stats.too_long) if val_stats else 0},
        max_length=cfg.data.max_length, epochs=cfg.training.epochs, steps=trainer.state.global_step,
        parameters={"trainable": counts.trainable, "total": counts.total, "trainable_share": counts.share},
        first_loss=losses[0] if losses else None, last_loss=losses[-1] if losses else None,
        validation_loss=final.get("eval_loss"), seconds=round(time.monotonic() - started, 1),
        batching={"mode": cfg.training.batching, "max_tokens": cfg.training.max_tokens,
                  "packing": cfg.training.packing, **asdict(plan), "memory_plan": memory,
                  "padding_share": _mean([r["padding_share"] for r in rows if "padding_share" in r])},
        early_stopping={"weights": composite.weights(), "best_step": trainer.state.best_global_step,
                        "best_composite": trainer.state.best_metric, "final": {k: v for k, v in final.items()
                                                                             if k.startswith("eval_")}},
        tokens={"train_total": train_stats.total_tokens, "train_trained": train_stats.trained_tokens},
        precision=compute.to_json(),
        time_budget=budget.outcome.to_json() if budget and budget.outcome else None,
        estimated_seconds=estimated.seconds["train"],
    )
    if trainer.args.process_index == 0:
        write_json(out / "result.json", result.to_json())
    return result


def _final_evaluation(trainer) -> dict:
    """The validation metrics of the weights training ends with: those logged when they were evaluated (the best
    checkpoint restored, or the last step when it was evaluated), else a new evaluation."""
    state = trainer.state
    step = state.best_global_step if trainer.args.load_best_model_at_end and state.best_global_step else \
        state.global_step
    logged = [row for row in state.log_history if "eval_loss" in row and row.get("step") == step]
    return {k: v for k, v in logged[-1].items() if k.startswith("eval_")} if logged else trainer.evaluate()


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _append(path: Path, row: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(row, default=str) + "\n")


def _metrics_callback(path: Path):
    from transformers import TrainerCallback

    class MetricsLog(TrainerCallback):
        """Appends every logged dict (training steps and evaluations) to metrics.jsonl as it happens."""

        def __init__(self):
            self.start = time.monotonic()

        def on_log(self, args, state, control, logs=None, **kwargs):
            if state.is_world_process_zero and logs:
                _append(path, {"step": state.global_step, "epoch": state.epoch,
                               "elapsed_s": round(time.monotonic() - self.start, 3), **logs})

    return MetricsLog()
