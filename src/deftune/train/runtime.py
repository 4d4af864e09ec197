"""How long a run will take on this machine, said before the time is spent.

Each stage's work is counted in model FLOPs from the configuration and the data's rendered lengths: training from
the memory plan's FLOPs per token and the batch plan's steps (its validation evaluations included); evaluation and
safety as prompt passes (every token once through the model) and decoding steps (one token per row of a batch).
Seconds divide those FLOPs by this machine's measured matmul speed, in the precision the run computes in and at the
shapes the work runs at, times the share of that speed a whole model reaches (EFFICIENCY, measured on the demo).
The estimate is recorded beside what each stage then took (pipeline.json), so its error is always in view."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from .. import data
from ..config import Config
from ..core import models
from ..core.precision import choose as choose_precision
from ..core.precision import matmul_flops_per_s
from ..data import seeded_subset
from . import estimate as plan
from .batching import BatchPlan

# Achieved model FLOP/s over the matmul speed at the same shape, measured with examples/demo.yaml (2-core AVX2 CPU,
# fp32; train 2.2 s a step, evaluate 332 s, safety 168 s): training steps, prompt passes (prefill and option
# scoring) and decoding steps of batched generation. Shared machines vary by ±30% from minute to minute, and so
# does the estimate.
EFFICIENCY = {"train": 0.83, "prefill": 0.8, "decode": 0.47}
# Mean tokens of the shipped benchmark items (SmolLM2 tokenizer), padding within a batch included:
# retention multiple choice (context, option, options) and bias benchmarks (prompt, option, options).
RETENTION_ITEMS = {
    "piqa": (13, 23, 2),
    "openbookqa": (16, 5, 4),
    "siqa": (29, 6, 3),
    "commonsenseqa": (20, 3, 5),
    "mmlu": (60, 8, 4),
}
BIAS_ITEMS = {"crows_pairs": (5, 15, 2), "stereoset": (6, 11, 3), "bbq": (58, 5, 3), "winobias": (9, 9, 2)}
XSUM_TOKENS, SAFETY_PROMPT_TOKENS, SAFETY_ANSWER_TOKENS = 233, 46, 48
FIXED_SECONDS = {"audit": 10.0, "plan": 12.0, "report": 2.0}  # stages whose cost barely depends on the model


@dataclass
class Work:
    """Model work of one stage: prompt tokens through the model, and decoding steps of `rows` rows each."""

    prompt_tokens: float = 0.0
    decode_steps: float = 0.0
    rows: int = 16

    def __add__(self, other: Work) -> Work:
        return Work(self.prompt_tokens + other.prompt_tokens, self.decode_steps + other.decode_steps, self.rows)

    def scaled(self, k: float) -> Work:
        return Work(self.prompt_tokens * k, self.decode_steps * k, self.rows)


@dataclass
class RunTime:
    """Estimated seconds per stage on this machine."""

    precision: str
    seconds: dict[str, float]
    training_steps: int
    seconds_per_step: float
    budget_seconds: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(self.seconds.values())

    def describe(self) -> str:
        parts = ", ".join(f"{name} {_minutes(s)}" for name, s in self.seconds.items())
        budget = f" (training.time_budget {_minutes(self.budget_seconds)})" if self.budget_seconds else ""
        return (
            f"estimated wall time on this machine ({self.precision}): about {_minutes(self.total)} — {parts}; "
            f"training {self.training_steps} steps × {self.seconds_per_step:.1f} s{budget}"
        )

    def to_json(self) -> dict:
        return asdict(self) | {"total": self.total}


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 90 else f"{seconds:.0f} s"


@dataclass(frozen=True)
class Speeds:
    """FLOPs per forward token and the FLOP/s each kind of work reaches here."""

    token_flops: float  # forward FLOPs of one token through the decoder layers
    head_flops: float  # forward FLOPs of projecting one position onto the vocabulary
    prefill: float
    decode: float
    train: float

    def seconds(self, work: Work) -> float:
        prompt = work.prompt_tokens * self.token_flops / self.prefill
        decode = work.decode_steps * work.rows * (self.token_flops + self.head_flops) / self.decode
        return prompt + decode


def speeds(cfg: Config, tokens_per_micro: int, batch_size: int) -> Speeds:
    arch, counts = plan.arch_and_counts(cfg)
    compute = choose_precision(cfg.model.precision, warn=False)
    device = plan.default_device()

    def measured(m: int) -> float:
        return matmul_flops_per_s(compute.name, device, max(1, min(m, 4096)), arch.hidden, arch.intermediate)

    return Speeds(
        token_flops=2.0 * counts.layer_linear * arch.layers,
        head_flops=2.0 * arch.hidden * arch.vocab,
        prefill=measured(512) * EFFICIENCY["prefill"],
        decode=measured(batch_size) * EFFICIENCY["decode"],
        train=measured(tokens_per_micro) * EFFICIENCY["train"],
    )


def generation(n: int, prompt: float, new_tokens: int, batch: int) -> Work:
    """`n` prompts of `prompt` tokens answered in batches of `batch` with up to `new_tokens` tokens."""
    return Work(n * prompt, math.ceil(n / batch) * new_tokens, batch)


def options(n: int, prompt: float, option: float, k: int, batch: int) -> Work:
    """`n` prompts each scored with `k` options of `option` tokens (one prompt pass, one pass of all options)."""
    return Work(n * (prompt + k * option), 0, batch)


def evaluation_work(cfg: Config, test_examples: int, prompt_tokens: float, labels: int) -> Work:
    """One system's evaluation: the test records (classification: answers and label scores), stress suites and
    retention (base-model paraphrases counted once per system: an upper bound)."""
    ev, batch = cfg.evaluation, cfg.evaluation.batch_size
    n = min(ev.max_examples or test_examples, test_examples)
    answer = 3  # a label and its end-of-turn tokens
    work = generation(n, prompt_tokens, ev.max_new_tokens, batch) + options(n, 0, answer, labels, batch)
    if ev.stress and labels:
        s = min(ev.stress_examples, n)
        variants = s * (len(ev.perturbations) + 1) + ev.foreign_examples + ev.ambiguous_examples
        work = work + options(variants, prompt_tokens, answer, labels, batch)
        if "paraphrase" in ev.perturbations:
            work = work + generation(s, prompt_tokens, cfg.data.max_input_tokens + 32, batch).scaled(0.5)
    for name in ev.retention_benchmarks:
        context, option, k = RETENTION_ITEMS[name]
        work = work + options(ev.retention_questions, context, option, k, batch)
    return work + Work(ev.perplexity_documents * min(XSUM_TOKENS, ev.perplexity_max_tokens), 0, batch)


def safety_work(cfg: Config) -> Work:
    """One system's safety stage: bias benchmarks and answers to benign and toxic prompts."""
    sc = cfg.safety
    work = Work(rows=sc.batch_size)
    for name in sc.bias_benchmarks:
        prompt, option, k = BIAS_ITEMS[name]
        work = work + options(sc.bias_examples, prompt, option, k, sc.batch_size)
    return work + generation(2 * sc.refusal_prompts, SAFETY_PROMPT_TOKENS, SAFETY_ANSWER_TOKENS, sc.batch_size)


def estimate(
    cfg: Config,
    *,
    train_lengths: list[int],
    validation_lengths: list[int],
    prompt_tokens: float,
    test_examples: int,
    labels: int,
    trained_per_row: int | None,
    systems: int = 2,
    stages: tuple[str, ...] = ("audit", "plan", "train", "evaluate", "safety", "report"),
) -> RunTime:
    """The run's time per stage from its rendered lengths (training and validation examples, mean test prompt)."""
    batch_plan = BatchPlan.of(cfg.training, train_lengths, 1)
    steps = batch_plan.optimizer_steps(cfg.training)
    est = plan.estimate(cfg, trained_per_row=trained_per_row, timed=False)
    fast = speeds(cfg, round(batch_plan.tokens_per_micro), cfg.evaluation.batch_size)
    # the plan's FLOPs for its worst-case micro-batch, scaled to the tokens a step really computes
    per_step = est.flops_per_step / max(est.tokens_per_step, 1) * batch_plan.tokens_per_micro * batch_plan.accumulation
    seconds_per_step = per_step / fast.train
    es = cfg.training.early_stopping
    evaluations = 0 if not validation_lengths else max(1, steps // (cfg.training.eval_steps or max(1, steps // 5)))
    validation = Work(sum(validation_lengths), 0, cfg.evaluation.batch_size)
    if es.enabled and es.task_weight:
        validation = validation + generation(
            min(es.task_examples, len(validation_lengths)), prompt_tokens, 16, cfg.evaluation.batch_size
        )
    training = steps * seconds_per_step + evaluations * fast.seconds(validation)
    budget = cfg.training.time_budget_seconds
    seconds = {}
    for stage in stages:
        if stage == "train":
            seconds[stage] = min(training, budget + fast.seconds(validation)) if budget else training
        elif stage == "evaluate":
            seconds[stage] = systems * fast.seconds(evaluation_work(cfg, test_examples, prompt_tokens, labels))
        elif stage == "safety":
            seconds[stage] = systems * fast.seconds(safety_work(cfg)) + 10.0  # + the screens' own evaluation
        else:
            seconds[stage] = FIXED_SECONDS[stage]
    return RunTime(
        choose_precision(cfg.model.precision, warn=False).name,
        {k: round(v, 1) for k, v in seconds.items()},
        steps,
        seconds_per_step,
        budget,
    )


def for_config(
    cfg: Config, stages: tuple[str, ...] = ("audit", "plan", "train", "evaluate", "safety", "report"), systems: int = 2
) -> RunTime:
    """The estimate for a configuration: its data split and rendered with the model's tokenizer."""
    splits = data.load_splits(cfg.data, cfg.run.seed)
    tokenizer = models.load_tokenizer(
        models.resolve(cfg.model.spec), revision=cfg.model.revision, trust_remote_code=cfg.model.trust_remote_code
    )
    renderer = data.renderer_for(tokenizer, cfg.data, *splits.values())
    train, _ = renderer.render_all(splits["train"].records)
    validation, _ = renderer.render_all(splits["validation"].records)
    sample = seeded_subset(splits["test"].records or splits["validation"].records, 64, cfg.run.seed)
    prompts = [
        len(tokenizer(renderer.prompt_text(r), add_special_tokens=False)["input_ids"])
        for r in sample
        if r.format != "text"
    ]
    return estimate(
        cfg,
        train_lengths=[len(r) for r in train],
        validation_lengths=[len(r) for r in validation],
        prompt_tokens=sum(prompts) / len(prompts) if prompts else 0.0,
        test_examples=len(splits["test"]),
        labels=len(renderer.labels),
        trained_per_row=max((r.n_trained for r in train), default=None),
        systems=systems,
        stages=stages,
    )
