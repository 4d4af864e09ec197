"""Typed, versioned models of the JSON files the stages leave in a run folder: train/result.json, evaluate/eval.json,
safety/safety.json and pipeline.json. Writers build the model and write through it, readers (the report) parse
through it, so the two cannot drift: an unknown, missing or renamed field is a RunError naming the file and the
field. Every artifact carries `schema_version` (SCHEMA_VERSION); a file written without one is version 1."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import RunError
from .files import parse_json, write_json

SCHEMA_VERSION = 1


class Strict(BaseModel):
    """A part of an artifact whose structure is known: a field it does not declare is an error."""

    model_config = ConfigDict(extra="forbid")


class Artifact(Strict):
    """A JSON file a stage writes, read and written through its model."""

    schema_version: int = Field(SCHEMA_VERSION, ge=1, le=SCHEMA_VERSION)

    @classmethod
    def read(cls, path: str | Path) -> Self:
        """The parsed file; a RunError naming the file and the (first) field that does not match."""
        path = Path(path)
        found = parse_json(
            path.read_text(encoding="utf-8"), "malformed JSON", lambda message: RunError(message, file=str(path))
        )
        try:
            return cls.model_validate(found)
        except ValidationError as exc:
            problems = [(".".join(map(str, e["loc"])), e["msg"]) for e in exc.errors()]
            also = "".join(f"; {loc}: {msg}" for loc, msg in problems[1:4]) + ("; ..." if len(problems) > 4 else "")
            raise RunError(
                f"{problems[0][1]}{also} (expected {cls.__name__}, schema version {SCHEMA_VERSION})",
                file=str(path),
                field=problems[0][0] or None,
            ) from None

    def write(self, path: str | Path) -> None:
        """Write the file atomically (readers see the old content or the new)."""
        write_json(Path(path), self.model_dump())


# ---- parts shared by several artifacts ---------------------------------------------------------------------------


class Interval(Strict):
    """A metric with its percentile bootstrap interval (core.bootstrap.interval); eval.json writes NaN as null."""

    value: float | None
    low: float | None
    high: float | None
    n: int
    unit: str  # share (0-1), points, perplexity, ...
    confidence: float


class Difference(Strict):
    """tuned − base with a paired bootstrap interval and the approximate-randomisation p-value
    (core.bootstrap.paired)."""

    difference: float | None
    low: float | None
    high: float | None
    p_value: float | None
    n: int
    unit: str
    confidence: float
    test: str
    trials: int


class Precision(Strict):
    """What matmuls ran in, and why (core.precision.Precision)."""

    name: str
    requested: str
    device: str
    native: bool
    reason: str


class Statistics(Strict):
    """How intervals and paired tests were computed."""

    resamples: int
    confidence: float
    seed: int
    interval: str
    paired_test: str


# ---- train/result.json -------------------------------------------------------------------------------------------


class Parameters(Strict):
    trainable: int
    total: int
    trainable_share: float


class MemoryPlan(Strict):
    """The memory plan made before training: its figures, or why there is none (`skipped`)."""

    estimated_peak_bytes: int | None = None
    still_needed_bytes: int | None = None
    available_bytes: int | None = None
    max_tokens_lowered_from: int | None = None  # the token budget the plan lowered, if it did
    skipped: str | None = None


class Batching(Strict):
    """The batching settings, how the data was cut into micro-batches, and the memory plan."""

    mode: str
    max_tokens: int
    packing: bool
    micro_batches: int
    examples_per_micro: float
    tokens_per_micro: float
    accumulation: int
    memory_plan: MemoryPlan
    padding_share: float | None
    oom_backoffs: list[int] = []  # added by train() once result.json is written: the micro-batch sizes retried


class EarlyStopping(Strict):
    weights: dict[str, float]  # composite score term -> weight
    best_step: int | None
    best_composite: float | None
    final: dict[str, float]  # eval_* figures of the weights training ended with


class Tokens(Strict):
    train_total: int
    train_trained: int


class TimeBudget(Strict):
    """Whether training.time_budget cut the run (train.budget.BudgetOutcome)."""

    seconds: float
    planned_steps: int
    end_step: int
    decay_from: int | None
    cut: bool


class ResultArtifact(Artifact):
    """train/result.json: what fine-tuning did (deftune.train.TrainResult)."""

    run_dir: str
    output_dir: str  # the adapter or the full model; "" for an abandoned sweep trial
    method: str
    examples: dict[str, int]  # split -> examples
    dropped_too_long: dict[str, int]  # split -> examples over data.max_length
    max_length: int
    epochs: float
    steps: int
    parameters: Parameters
    first_loss: float | None
    last_loss: float | None
    validation_loss: float | None
    seconds: float
    batching: Batching
    early_stopping: EarlyStopping
    tokens: Tokens
    precision: Precision | None = None  # None: written before the precision was recorded
    time_budget: TimeBudget | None = None
    estimated_seconds: float | None = None  # runtime's estimate before training


# ---- evaluate/eval.json ------------------------------------------------------------------------------------------


class Evaluated(Strict):
    model: str  # the model spec, or the run's trained folder


class Decoding(Strict):
    """core.inference.DecodingSettings."""

    max_new_tokens: int
    do_sample: bool
    temperature: float
    top_p: float
    batch_size: int
    seed: int | None


class ClassScores(Strict):
    precision: float
    recall: float
    f1: float
    support: int


class ConfusionMatrix(Strict):
    gold: list[str]  # rows
    predicted: list[str]  # columns: the labels and one for invalid answers
    counts: list[list[int]]
    unit: str


class ClassReport(Strict):
    per_class: dict[str, ClassScores]
    confusion_matrix: ConfusionMatrix


class Examples(Strict):
    count: int
    ids: list[str]  # the first few


class ConfusionPair(Strict):
    pair: str  # "gold → answer"
    count: int
    ids: list[str]


class ErrorSummary(Strict):
    errors: int
    examples: int
    unit: str
    categories: dict[str, Examples]
    confusion_pairs: list[ConfusionPair]  # most frequent first


class Slice(Strict):
    field: str  # meta.<name>, audit.topic or input_length
    value: str
    n: int
    score: Interval
    errors: dict[str, int]  # error category -> count
    error_ids: list[str]


class Rephrasings(Strict):
    synonym_source: str
    unchanged: dict[str, int]  # perturbation -> records it left unchanged
    variants: dict[str, int]  # perturbation -> variants made
    records: int


class Perturbation(Strict):
    variants: int
    flip_rate: Interval
    accuracy: Interval
    flipped_ids: list[str]


class Invariance(Strict):
    perturbations: dict[str, Perturbation]
    accuracy: Interval
    worst_case_accuracy: Interval


class Calibration(Strict):
    accuracy: Interval
    ece: Interval


class HeldOut(Strict):
    """Topics (nearly) absent from training against the rest; `skipped` says why there is no comparison."""

    field: str
    held_out_values: list[str]
    train_share: dict[str, float]  # topic -> share of the training records
    skipped: str | None = None
    in_distribution: Calibration | None = None
    held_out: Calibration | None = None
    accuracy_drop: Interval | None = None


class Skipped(Strict):
    skipped: str  # why the suite did not run


class Confidence(Strict):
    mean_top_probability: Interval
    confident_rate: Interval


class Foreign(Strict):
    source: str
    n: int
    foreign: Confidence | None  # None: no foreign-domain inputs
    in_domain: Confidence


class Ambiguous(Strict):
    n: int
    false_confidence_rate: Interval
    false_confident_ids: list[str]
    mass_on_the_two_labels: Interval | None = None  # mixed inputs only


class Ambiguity(Strict):
    expectation: str  # spread | abstain
    confident_probability: float
    mixed: Ambiguous | None = None
    uninformative: Ambiguous | None = None


class Candidates(Strict):
    file: str
    records: int
    note: str


class Stress(Strict):
    """The three stress suites, per system (evaluate.stress)."""

    rephrasings: Rephrasings
    invariance: dict[str, Invariance]
    held_out: dict[str, HeldOut | Skipped]
    foreign: dict[str, Foreign]
    ambiguity: dict[str, Ambiguity | None]  # None: no ambiguous inputs
    candidates: Candidates


class RetentionChange(Strict):
    base: Interval
    tuned: Interval
    drop: Interval
    relative_drop: Interval
    p_value: float | None


class BenchmarkSource(Strict):
    file: str
    questions: int
    skipped_rows: int


class PerplexitySource(Strict):
    file: str
    documents: int
    max_tokens: int


class Retention(Strict):
    """General-knowledge benchmarks and perplexity (evaluate.retention)."""

    metrics: dict[str, RetentionChange | Interval]  # benchmark -> base vs tuned (a run), or one model's figure
    sources: dict[str, BenchmarkSource | PerplexitySource]


class Review(Strict):
    files: list[str]
    labels: list[str]  # the labels reviewers choose from


class EvalArtifact(Artifact):
    """evaluate/eval.json: task metrics, slices, errors, stress suites and retention of the evaluated systems
    ("base" and "tuned" for a run, "model" for a model spec)."""

    target: str
    task: Literal["classification", "generation"]
    examples: int
    data: str
    systems: dict[str, Evaluated]
    decoding: Decoding
    precision: Precision
    statistics: Statistics
    signatures: dict[str, str]  # sacrebleu metric -> signature
    metrics: dict[str, dict[str, dict[str, Interval]]]  # system -> group (generated, likelihood) -> metric
    comparison: dict[str, dict[str, Difference]] | None  # group -> metric -> tuned − base (a run only)
    per_class: dict[str, ClassReport] | None  # system -> report (classification only)
    errors: dict[str, ErrorSummary]
    slices: dict[str, list[Slice]]  # system -> slices, worst first
    stress: Stress | None
    retention: Retention | None
    review: Review
    seconds: float


# ---- safety/safety.json ------------------------------------------------------------------------------------------


class BiasChange(Strict):
    base: Interval
    tuned: Interval
    change: Difference


class BiasSource(Strict):
    file: str
    items: int  # used
    of: int  # available


class Bias(Strict):
    metrics: dict[str, dict[str, BiasChange | Interval]]  # benchmark -> metric -> base vs tuned, or one model's
    sources: dict[str, BiasSource]


class ToxicScreening(Strict):
    n: int
    by_rule: dict[str, int]
    examples_missed: list[str]
    source: str
    toxicity_at_least: float


class BenignScreening(Strict):
    n: int
    by_rule: dict[str, int]
    examples_flagged: list[str]
    sources: list[str]


class Filters(Strict):
    """The input/output screens on toxic and benign prompts (safety.filters.evaluate_filters)."""

    toxic_recall: Interval
    benign_false_positive_rate: Interval
    targets: dict[str, float]
    toxic: ToxicScreening
    benign: BenignScreening


class Pii(Strict):
    """PII redaction on a generated set (safety.filters.evaluate_pii)."""

    redaction_rate: float
    n: int
    by_kind: dict[str, float]
    target: float
    missed: list[str]
    decoy_redaction_rate: float
    decoys: int
    decoys_redacted: list[str]


class Answer(Strict):
    prompt: str
    answer: str
    refused: bool


class Answers(Strict):
    """How one model answers benign and toxic prompts (safety.stage.answer_rates)."""

    benign_refusal_rate: Interval
    benign_examples: list[Answer]
    toxic_refusal_rate: Interval
    toxic_answer_blocked_rate: Interval
    toxic_examples: list[Answer]
    over_refusal: float


class AnswersChange(Strict):
    over_refusal: float  # tuned − base


class SafetyArtifact(Artifact):
    """safety/safety.json: bias benchmarks, content screens, PII redaction and refusals of the models checked."""

    target: str
    precision: Precision
    statistics: Statistics
    config: dict[str, Any]  # the safety config section as run (its schema is the config's)
    out_dir: str
    systems: list[str]
    bias: Bias
    filters: Filters
    pii: Pii
    answers: dict[str, Answers | AnswersChange]  # system -> answers; "change" (a run): tuned − base
    seconds: float


# ---- pipeline.json -----------------------------------------------------------------------------------------------


class StageRecord(Strict):
    key: str  # the hash of what the stage read: a match skips the stage
    seconds: float
    estimated_seconds: float | None = None  # None: recorded before stages were estimated
    finished: str  # ISO 8601, UTC


class Estimate(Strict):
    """Estimated seconds per stage on this machine (train.runtime.RunTime)."""

    precision: str
    seconds: dict[str, float]
    training_steps: int
    seconds_per_step: float
    budget_seconds: float | None
    notes: list[str]
    total: float


class PipelineArtifact(Artifact):
    """pipeline.json: what `deftune run` recorded per stage (to skip unchanged ones), and its latest estimate."""

    stages: dict[str, StageRecord] = {}
    estimate: Estimate | None = None
