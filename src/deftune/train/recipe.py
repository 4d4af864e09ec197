"""Training as a recipe of named steps, read top to bottom in `run_once`:

    load the data (bad data fails before anything is written) → prepare the run folder → transform the data
    (augment, balance) → load the model → render the examples → set up the model (dropout, method) →
    objectives (loss terms, the validation score) → batches and memory → the trainer → fit → save and record.

`train` wraps it in the out-of-memory back-off. The plan's measurements set up models through the same steps."""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from transformers import EarlyStoppingCallback, set_seed
from transformers.trainer_callback import PrinterCallback

from .. import data, methods
from ..config import Config
from ..core import models, runs
from ..core.artifacts import ResultArtifact
from ..core.files import write_json
from ..core.precision import Precision
from ..core.precision import choose as choose_precision
from ..data.records import Dataset
from ..data.render import Rendered, Renderer
from ..errors import DataError, DeftuneError, RunError
from . import memory, runtime, transforms
from .batching import BatchPlan
from .budget import TimeBudget
from .engine import (
    CarefulTrainer,
    Collator,
    MetricsLog,
    Validation,
    append_jsonl,
    latest_checkpoint,
    training_args,
)
from .hooks import Hooks
from .regularize import targeted_dropout
from .stopping import Composite, drop_tracker
from .terms import LossTerm, adversary, l2sp

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What a training run did; written as result.json through core.artifacts.ResultArtifact."""

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


@dataclass
class RunFolder:
    run_dir: Path
    out: Path  # <run>/train
    checkpoint: Path | None  # the checkpoint a resumed run continues from

    @property
    def metrics(self) -> Path:
        return self.out / "metrics.jsonl"


@dataclass
class Examples:
    """The rendered training and validation examples, with what rendering dropped."""

    splits: dict[str, Dataset]
    renderer: Renderer
    train: list[Rendered]
    validation: list[Rendered]
    stats: dict  # split -> RenderStats (validation: None when there is no validation data)

    @property
    def trained_per_row(self) -> int | None:
        return max((r.n_trained for r in self.train), default=None)


@dataclass
class Setup:
    """The model to train and what the objectives need from before the method was applied."""

    model: object
    counts: methods.ParameterCount
    base_params: set[int]  # ids of the base model's parameters


def train(
    cfg: Config, *, overwrite: bool = False, resume: bool = False, quiet: bool = False, hooks: Hooks | None = None
) -> TrainResult:
    """Fine-tune `cfg.model` on `cfg.data` with `cfg.method`; artifacts go to <run>/train/.

    On out-of-memory the micro-batch is halved and gradient accumulation doubled, and training starts again.
    With `resume`, continue the named run from its last complete checkpoint. `hooks`: callbacks and a shared
    retention measure from the caller; a run a callback abandons is neither evaluated at the end nor saved
    (output_dir is "")."""
    hooks = hooks or Hooks()
    backoffs = []
    while True:
        try:
            result = run_once(cfg, overwrite=overwrite, resume=resume, quiet=quiet, hooks=hooks)
            result.batching["oom_backoffs"] = backoffs
            return result
        except torch.OutOfMemoryError:
            smaller = memory.smaller_batches(cfg)
            if smaller is None:
                raise DeftuneError(
                    "out of memory even with the smallest micro-batch; use gradient "
                    "checkpointing, bf16, a shorter data.max_length or a PEFT method"
                ) from None
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            backoffs.append(
                smaller.training.max_tokens
                if smaller.training.batching == "token_budget"
                else smaller.training.batch_size
            )
            log.warning("out of memory: retrying with smaller micro-batches (%s)", backoffs[-1])
            cfg, overwrite = smaller, True


def run_once(cfg: Config, *, overwrite: bool, resume: bool, quiet: bool, hooks: Hooks) -> TrainResult:
    started = time.monotonic()
    set_seed(cfg.run.seed)
    compute = choose_precision(cfg.model.precision)
    splits = data.load_splits(cfg.data, cfg.run.seed)
    folder = prepare_run(cfg, overwrite=overwrite, resume=resume)
    splits = transform_data(splits, cfg, folder.run_dir)
    model, tokenizer = load_model(cfg)
    examples = render(cfg, splits, tokenizer)
    retention_drop = hooks.retention_drop or base_retention(cfg, model, tokenizer, examples)
    setup = set_up_model(cfg, model)
    terms = loss_terms(cfg, setup, examples, warm=folder.checkpoint is None)
    validation = validation_score(cfg, examples, retention_drop)
    cfg, plan, memory_plan = batches(cfg, examples)
    estimated = estimate(cfg, examples, plan)  # before the trainer, which seeds the random state training uses
    log.info("%s", estimated.describe())
    trainer, budget = build_trainer(
        cfg, setup, tokenizer, examples, terms, validation, plan, folder, compute, quiet=quiet, hooks=hooks
    )
    fit(trainer, cfg, setup, plan, validation, folder, compute)
    final = {} if hooks.abandoned() or not examples.validation else final_evaluation(trainer)
    output_dir = "" if hooks.abandoned() else save(trainer, cfg, tokenizer, examples, terms, folder)
    result = record(
        cfg,
        folder,
        trainer,
        examples,
        setup,
        output_dir,
        final,
        plan,
        memory_plan,
        compute,
        budget,
        estimated,
        round(time.monotonic() - started, 1),
    )
    if trainer.args.process_index == 0:  # through the typed artifact the report reads: writer and reader agree
        ResultArtifact.model_validate(result.to_json()).write(folder.out / "result.json")
    return result


# ---- the steps -------------------------------------------------------------------------------------------------


def prepare_run(cfg: Config, *, overwrite: bool, resume: bool) -> RunFolder:
    """The run folder (a resumed run keeps its own, and continues from its last complete checkpoint)."""
    if resume and not cfg.run.name:
        raise RunError("--resume needs run.name: the run to continue")
    run_dir = runs.prepare(cfg, "train", overwrite=overwrite or resume)
    out = run_dir / "train"
    checkpoint = latest_checkpoint(out / "checkpoints") if resume else None
    if resume and checkpoint is None:
        raise RunError(f"{out / 'checkpoints'}: no complete checkpoint to resume from")
    folder = RunFolder(run_dir, out, checkpoint)
    if not resume:
        folder.metrics.unlink(missing_ok=True)
    return folder


def transform_data(splits: dict[str, Dataset], cfg: Config, run_dir: Path) -> dict[str, Dataset]:
    """The data transforms (augmentation, balancing), then the split's record ids into <run>/data/split.json."""
    splits = transforms.apply(splits, cfg, run_dir)
    write_json(run_dir / "data" / "split.json", {name: [r.id for r in ds.records] for name, ds in splits.items()})
    return splits


def load_model(cfg: Config):
    m = cfg.model
    return models.load(
        m.spec,
        dtype=m.dtype,
        revision=m.revision,
        trust_remote_code=m.trust_remote_code,
        quantize_4bit=methods.get(cfg.method.name).quantized_base,
    )


def render(cfg: Config, splits: dict[str, Dataset], tokenizer) -> Examples:
    """Training and validation examples as token ids with trained positions; training examples carry their
    record's loss weight (`meta.weight`, as balancing by reweighting writes it)."""
    renderer = data.renderer_for(tokenizer, cfg.data, *splits.values())
    train_set, train_stats = renderer.render_all(splits["train"].records)
    weights = example_weights(splits["train"].records)
    if weights:
        train_set = [replace(r, weight=weights[r.id]) for r in train_set]
    val_set, val_stats = renderer.render_all(splits["validation"].records) if len(splits["validation"]) else ([], None)
    return Examples(splits, renderer, train_set, val_set, {"train": train_stats, "validation": val_stats})


def example_weights(records) -> dict[str, float] | None:
    """Each training record's loss weight from its `meta.weight`, or None when no record has one."""
    if not any("weight" in r.meta for r in records):
        return None
    weights = {}
    for r in records:
        w = r.meta.get("weight", 1.0)
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
            raise DataError(f"expected a finite number >= 0, got {w!r}", file=r.source or r.id, field="meta.weight")
        weights[r.id] = float(w)
    return weights


def base_retention(cfg: Config, model, tokenizer, examples: Examples):
    """The retention measure for the validation score, taken on the base model before training — when
    training.early_stopping weighs retention and there is validation data to stop on; else None."""
    es = cfg.training.early_stopping
    if not (es.enabled and es.retention_weight and examples.validation):
        return None
    log.info("retention: measuring the base model on %s", ", ".join(cfg.evaluation.retention_benchmarks))
    return drop_tracker(model, tokenizer, cfg.evaluation, es.retention_questions, cfg.run.seed)


def set_up_model(cfg: Config, model) -> Setup:
    """Targeted dropout, then the method (which decides what is trained)."""
    targeted_dropout(model, cfg.training.dropout)
    base_params = {id(p) for p in model.parameters()}
    model = methods.apply(model, cfg.method, cfg.training.dropout)
    if cfg.training.gradient_checkpointing:
        model.enable_input_require_grads()
    return Setup(model, methods.count_parameters(model), base_params)


def loss_terms(cfg: Config, setup: Setup, examples: Examples, *, warm: bool) -> list[LossTerm]:
    """L2-SP on trained base weights; the debiasing adversary (warmed up unless the run resumes)."""
    grouping = adversary.Grouping(cfg.data.group_attribute, cfg.run.seed, cfg.evaluation.batch_size)
    found = [
        l2sp.build(setup.model, setup.base_params, cfg.training),
        adversary.build(
            cfg.training.adversary,
            grouping,
            setup.model,
            examples.train,
            examples.splits["train"].records,
            packing=cfg.training.packing,
            warm=warm,
        ),
    ]
    return [term for term in found if term is not None]


def validation_score(cfg: Config, examples: Examples, retention_drop) -> Validation:
    """The composite score early stopping watches, and the validation records answered for its task term."""
    kept = {r.id for r in examples.validation}
    records = [r for r in examples.splits["validation"].records if r.id in kept]
    return Validation(
        Composite(cfg.training.early_stopping, retention_drop),
        examples.renderer,
        records[: cfg.training.early_stopping.task_examples],
    )


def batches(cfg: Config, examples: Examples) -> tuple[Config, BatchPlan, dict]:
    """The memory fit (the token budget lowered when the run would not fit), then the batch plan."""
    cfg, memory_plan = memory.fit(cfg, examples.trained_per_row)
    plan = BatchPlan.of(cfg.training, [len(r) for r in examples.train], int(os.environ.get("WORLD_SIZE", "1")))
    return cfg, plan, memory_plan


def build_trainer(
    cfg: Config,
    setup: Setup,
    tokenizer,
    examples: Examples,
    terms: list[LossTerm],
    validation: Validation,
    plan: BatchPlan,
    folder: RunFolder,
    compute: Precision,
    *,
    quiet: bool,
    hooks: Hooks,
) -> tuple[CarefulTrainer, TimeBudget | None]:
    args = training_args(
        cfg,
        folder.out,
        bool(examples.validation),
        plan.accumulation,
        plan.optimizer_steps(cfg.training),
        quiet,
        compute,
    )
    budget = (
        TimeBudget(cfg.training.time_budget_seconds, cfg.training.decay)
        if cfg.training.time_budget is not None
        else None
    )
    callbacks = [MetricsLog(folder.metrics), *([budget] if budget else []), *hooks.callbacks]
    if args.load_best_model_at_end:
        es = cfg.training.early_stopping
        callbacks.append(
            EarlyStoppingCallback(early_stopping_patience=es.patience, early_stopping_threshold=es.min_delta)
        )
    trainer = CarefulTrainer(
        model=setup.model,
        args=args,
        train_dataset=examples.train,
        eval_dataset=examples.validation or None,
        data_collator=Collator(tokenizer.pad_token_id, packing=cfg.training.packing),
        callbacks=callbacks,
        training=cfg.training,
        lengths=[len(r) for r in examples.train],
        terms=terms,
        validation=validation,
    )
    if quiet:  # with progress bars off, transformers would print every log dict instead
        trainer.remove_callback(PrinterCallback)
    return trainer, budget


def estimate(cfg: Config, examples: Examples, plan: BatchPlan) -> runtime.RunTime:
    """The training stage's wall time on this machine, before it is spent."""
    return runtime.estimate(
        cfg,
        train_lengths=[len(r) for r in examples.train],
        validation_lengths=[len(r) for r in examples.validation],
        prompt_tokens=_mean([len(r) - r.n_trained for r in examples.validation]) or 0.0,
        test_examples=0,
        labels=len(examples.renderer.labels),
        trained_per_row=examples.trained_per_row,
        stages=("train",),
    )


def fit(
    trainer: CarefulTrainer,
    cfg: Config,
    setup: Setup,
    plan: BatchPlan,
    validation: Validation,
    folder: RunFolder,
    compute: Precision,
) -> None:
    """Log what is about to happen, restore the loss terms of a resumed run, and train."""
    log.info("method %s: %s; precision %s", cfg.method.name, setup.counts, compute)
    log.info(
        "training on %d examples (%d validation), max length %d tokens: %d micro-batches of ~%.1f examples "
        "(%.0f tokens) per epoch, accumulation %d, %d optimizer steps; composite weights %s",
        len(trainer.train_dataset),
        len(trainer.eval_dataset or []),
        cfg.data.max_length,
        plan.micro_batches,
        plan.examples_per_micro,
        plan.tokens_per_micro,
        plan.accumulation,
        plan.optimizer_steps(cfg.training),
        validation.composite.weights(),
    )
    if folder.checkpoint is not None:
        for term in trainer.terms:
            term.restore(folder.checkpoint)
    if trainer.args.process_index == 0:
        counts = setup.counts
        append_jsonl(
            folder.metrics,
            {
                "event": "start",
                "method": cfg.method.name,
                "parameters": asdict(counts) | {"share": counts.share},
                "precision": compute.to_json(),
                "composite_weights": validation.composite.weights(),
                "resumed_from": str(folder.checkpoint or ""),
            },
        )
    trainer.train(resume_from_checkpoint=str(folder.checkpoint) if folder.checkpoint else None)


def final_evaluation(trainer: CarefulTrainer) -> dict:
    """The validation metrics of the weights training ends with: those logged when they were evaluated (the best
    checkpoint restored, or the last step when it was evaluated), else a new evaluation."""
    state = trainer.state
    step = (
        state.best_global_step if trainer.args.load_best_model_at_end and state.best_global_step else state.global_step
    )
    logged = [row for row in state.log_history if "eval_loss" in row and row.get("step") == step]
    return {k: v for k, v in logged[-1].items() if k.startswith("eval_")} if logged else trainer.evaluate()


def save(
    trainer: CarefulTrainer, cfg: Config, tokenizer, examples: Examples, terms: list[LossTerm], folder: RunFolder
) -> str:
    """The trained weights (with the tokenizer) and, with an adversary, its report on what is left to read."""
    model = trainer.accelerator.unwrap_model(trainer.model)
    for term in terms:
        if isinstance(term, adversary.Adversary) and trainer.args.process_index == 0:
            grouping = adversary.Grouping(cfg.data.group_attribute, cfg.run.seed, cfg.evaluation.batch_size)
            adversary.write_report(
                term,
                model,
                (examples.validation, examples.splits["validation"].records),
                (examples.train, examples.splits["train"].records),
                cfg.training.adversary,
                grouping,
                folder.out / "adversary.json",
            )
    output_dir = methods.save(model, cfg.method, folder.out)
    tokenizer.save_pretrained(output_dir)
    return str(output_dir)


def record(
    cfg: Config,
    folder: RunFolder,
    trainer: CarefulTrainer,
    examples: Examples,
    setup: Setup,
    output_dir: str,
    final: dict,
    plan: BatchPlan,
    memory_plan: dict,
    compute: Precision,
    budget: TimeBudget | None,
    estimated: runtime.RunTime,
    seconds: float,
) -> TrainResult:
    rows = [json.loads(line) for line in folder.metrics.read_text().splitlines()]
    losses = [row["loss"] for row in rows if "loss" in row]
    stats, counts, t = examples.stats, setup.counts, cfg.training
    return TrainResult(
        run_dir=str(folder.run_dir),
        output_dir=output_dir,
        method=cfg.method.name,
        examples={
            "train": len(examples.train),
            "validation": len(examples.validation),
            "test": len(examples.splits["test"]),
        },
        dropped_too_long={
            "train": len(stats["train"].too_long),
            "validation": len(stats["validation"].too_long) if stats["validation"] else 0,
        },
        max_length=cfg.data.max_length,
        epochs=t.epochs,
        steps=trainer.state.global_step,
        parameters={"trainable": counts.trainable, "total": counts.total, "trainable_share": counts.share},
        first_loss=losses[0] if losses else None,
        last_loss=losses[-1] if losses else None,
        validation_loss=final.get("eval_loss"),
        seconds=seconds,
        batching={
            "mode": t.batching,
            "max_tokens": t.max_tokens,
            "packing": t.packing,
            **asdict(plan),
            "memory_plan": memory_plan,
            "padding_share": _mean([r["padding_share"] for r in rows if "padding_share" in r]),
        },
        early_stopping={
            "weights": trainer.validation.composite.weights(),
            "best_step": trainer.state.best_global_step,
            "best_composite": trainer.state.best_metric,
            "final": {k: v for k, v in final.items() if k.startswith("eval_")},
        },
        tokens={"train_total": stats["train"].total_tokens, "train_trained": stats["train"].trained_tokens},
        precision=compute.to_json(),
        time_budget=budget.outcome.to_json() if budget and budget.outcome else None,
        estimated_seconds=estimated.seconds["train"],
    )


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None
