"""`training`: schedule, batching, regularisation, dropout, early stopping and extra loss terms."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from .base import Section, parse_duration


class DropoutConfig(Section):
    """Targeted dropout: on attention only, none added to MLPs or embeddings unless asked."""

    attention_heads: float = Field(
        0.1,
        ge=0,
        lt=1,
        description="drop whole attention heads' outputs (DropHead): "
        "regularises attention and keeps the fused "
        "attention kernels",
    )
    attention_probs: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="dropout on attention probabilities (on CPU this "
        "moves attention off the fused kernel: ~2x slower, "
        "attention matrices kept in memory)",
    )
    attention_modules: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="dropout in LoRA/adapter modules on attention (a copy and a mask of each input: ~13% slower)",
    )
    mlp_modules: float = Field(0.0, ge=0, lt=1, description="dropout in LoRA/adapter modules on MLPs")


class EarlyStoppingConfig(Section):
    """Early stopping on a composite validation score: a weighted sum of terms where higher is better."""

    enabled: bool = True
    loss_weight: float = Field(1.0, ge=0, description="weight of -validation loss")
    task_weight: float = Field(1.0, ge=0, description="weight of the task metric (macro-F1 or exact match)")
    retention_weight: float = Field(
        0.0,
        ge=0,
        description="weight of -retention drop versus the base model (pooled "
        "accuracy on evaluation.retention_benchmarks)",
    )
    retention_questions: int = Field(25, gt=0, description="questions per retention benchmark at each evaluation")
    task_examples: int = Field(64, gt=0, description="validation examples answered by generation for the metric")
    patience: int = Field(3, gt=0, description="evaluations without improvement before stopping")
    min_delta: float = Field(0.001, ge=0, description="smallest composite gain that counts as improvement")


class AdversaryConfig(Section):
    """Adversarial debiasing: a head predicting `data.group_attribute` from the hidden states, trained through a
    reversed gradient so the model unlearns what the head can read."""

    weight: float = Field(0.0, ge=0, description="weight of the reversed adversary loss (0: off)")
    probe: bool = Field(
        False,
        description="train the adversary head even at weight 0 (no reversed gradient): its "
        "accuracy shows how much the attribute is encoded",
    )
    hidden: int = Field(64, gt=0, description="hidden units of the adversary head")
    learning_rate: float = Field(
        1e-3, gt=0, description="learning rate of the adversary head (its own parameter group, no decay)"
    )
    objective: Literal["parity", "odds"] = Field(
        "parity",
        description="what the adversary removes: any information on the group (demographic parity), or "
        "what is left beyond the true label, which the head is also given (equality of "
        "odds; classification data)",
    )
    pooling: Literal["answer", "mean"] = Field(
        "answer",
        description="hidden state the adversary reads: at the answer position (last prompt token) or "
        "the mean over the input",
    )
    examples: int = Field(
        300,
        ge=0,
        description="grouped rows (seeded) the adversary is warmed up on and the probe after training measures",
    )
    warmup_epochs: int = Field(
        10,
        ge=0,
        description="epochs fitting the adversary on the base model's states before fine-tuning starts (0: cold start)",
    )

    @property
    def enabled(self) -> bool:
        return self.weight > 0 or self.probe


class TrainingConfig(Section):
    epochs: float = Field(1.0, gt=0)
    max_steps: int = Field(-1, description="stop after this many optimizer steps (-1: run the epochs)")
    time_budget: str | None = Field(
        None,
        description="wall time training may take, e.g. 20m, 2h, 1h30m: the WSD "
        "decay starts early enough to complete inside it",
    )
    learning_rate: float = Field(2e-4, gt=0)
    schedule: Literal["wsd", "cosine", "linear"] = Field("wsd", description="wsd: warmup, stable, decay")
    warmup: float = Field(0.05, ge=0, lt=1, description="share of steps warming up")
    decay: float = Field(0.2, ge=0, le=1, description="share of steps decaying (wsd)")
    decay_shape: Literal["linear", "cosine", "1-sqrt"] = "linear"
    min_lr_ratio: float = Field(0.0, ge=0, le=1, description="learning rate at the end, relative to the peak")
    batching: Literal["token_budget", "fixed"] = Field(
        "token_budget", description="token_budget: similar-length examples under max_tokens per micro-batch"
    )
    max_tokens: int = Field(
        512,
        gt=0,
        description="tokens per micro-batch (token_budget batching; halved on out-of-memory, accumulation doubled)",
    )
    packing: bool = Field(False, description="concatenate each micro-batch's examples into one row (no padding)")
    batch_size: int = Field(8, gt=0, description="examples per micro-batch (fixed batching)")
    effective_batch_tokens: int | None = Field(
        None, gt=0, description="target tokens per optimizer step; gradient accumulation makes up the rest"
    )
    effective_batch_examples: int | None = Field(
        None, gt=0, description="target examples per optimizer step; gradient accumulation makes up the rest"
    )
    gradient_accumulation: int = Field(1, gt=0, description="used when no effective batch target is set")
    weight_decay: float = Field(0.0, ge=0, description="decay toward zero for LoRA/adapter/prefix parameters")
    regularization: Literal["l2sp", "plain"] = Field(
        "l2sp", description="fully trained weights: l2sp pulls toward the pretrained values, plain toward zero"
    )
    l2sp: float = Field(0.01, ge=0, description="L2-SP strength alpha: alpha/2 * ||theta - theta0||^2")
    dropout: DropoutConfig = DropoutConfig()
    early_stopping: EarlyStoppingConfig = EarlyStoppingConfig()
    adversary: AdversaryConfig = AdversaryConfig()
    max_grad_norm: float = Field(1.0, gt=0)
    gradient_checkpointing: bool = False
    logging_steps: int = Field(1, gt=0)
    eval_steps: int | None = Field(None, gt=0, description="evaluate every N steps (default: about 5 times a run)")
    save_total_limit: int = Field(2, gt=0, description="checkpoints kept (the best one is always kept)")
    report_to: list[Literal["tensorboard", "mlflow"]] = Field([], description="extra experiment trackers")

    @model_validator(mode="after")
    def _consistent(self):
        if self.effective_batch_tokens and self.effective_batch_examples:
            raise ValueError("set effective_batch_tokens or effective_batch_examples, not both")
        if self.packing and self.batching != "token_budget":
            raise ValueError("packing needs batching: token_budget")
        if self.warmup + (self.decay if self.schedule == "wsd" else 0) > 1:
            raise ValueError("warmup + decay must not exceed 1")
        if self.time_budget is not None:
            if self.schedule != "wsd":
                raise ValueError("time_budget needs schedule: wsd (its decay can start at any step)")
        return self

    @field_validator("time_budget")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @property
    def time_budget_seconds(self) -> float | None:
        return None if self.time_budget is None else parse_duration(self.time_budget)
