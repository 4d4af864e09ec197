"""`data`: where the records come from, how they are split, audited, augmented and balanced."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .base import Section


class SplitConfig(Section):
    """How one dataset is cut into train/validation/test when no separate files are given (seeded, stratified
    by label for classification)."""

    validation: float = Field(0.1, ge=0, lt=1)
    test: float = Field(0.2, ge=0, lt=1)
    hold_out: str | None = Field(
        None,
        description="leave one topic out: 'FIELD=VALUE' (a meta field) or 'topic=K' "
        "(the data audit's topic K, fitted on all records); its records "
        "go to the test split only",
    )

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
    dominant_topic_share: float = Field(
        0.5, gt=0, le=1, description="warn when one topic holds more than this share of training data"
    )
    coverage_min_eval_share: float = Field(
        0.05, ge=0, le=1, description="eval topics smaller than this share are not checked"
    )
    coverage_ratio: float = Field(
        0.25,
        gt=0,
        le=1,
        description="an eval topic is thin in training when its training "
        "share is below this fraction of its eval share",
    )
    readability_outlier_z: float = Field(
        3.5,
        gt=0,
        description="robust z-score (median/MAD) of the Flesch-Kincaid grade beyond which a text is an outlier",
    )
    readability_group_gap: float = Field(
        3.0, gt=0, description="flag labels/sources whose median Flesch-Kincaid grades differ by more grade levels"
    )
    informal_rate: float = Field(
        4.0,
        gt=0,
        description="informal markers (contractions, slang/profanity, "
        "exclamations, emoticons) per 100 words that make a text "
        "informal",
    )
    mixed_tone_share: float = Field(
        0.1, gt=0, le=0.5, description="warn when the minority tone (formal/informal) has this share or more"
    )
    slang: list[str] | None = Field(None, description="slang/profanity terms (replaces the built-in list)")
    slice_fields: list[str] = Field(["source"], description="meta fields whose values are compared, like labels")
    lexicon: dict[str, dict[str, list[str]]] | None = Field(
        None, description="group terms, attribute -> group -> terms; replaces the built-in attributes it names"
    )
    min_group_ratio: float = Field(
        0.25,
        gt=0,
        lt=1,
        description="flag groups whose share of their attribute's records is below this fraction of an equal share",
    )
    min_group_records: int = Field(10, gt=0, description="smaller groups are left out of label-rate parity")
    parity_difference: float = Field(
        0.2,
        gt=0,
        le=1,
        description="flag label-rate differences between groups (statistical parity difference) above this",
    )
    shingle: int = Field(5, gt=0, description="character n-gram size of MinHash shingles")
    minhash_permutations: int = Field(128, ge=16, description="MinHash permutations (more: slower, more exact)")
    near_duplicate_jaccard: float = Field(
        0.8, gt=0, le=1, description="estimated Jaccard similarity from which two texts are near duplicates"
    )
    overlap_ngram: int = Field(8, gt=0, description="word n-gram size for train/eval overlap")
    overlap_share: float = Field(
        0.5,
        gt=0,
        le=1,
        description="an eval record leaks when this share of its word n-grams also occurs in training data",
    )
    min_agreement: float = Field(
        0.6, ge=-1, le=1, description="warn when kappa/alpha, or one class's agreement, is below this"
    )
    disputed: int = Field(20, gt=0, description="most-disputed examples listed")
    cleanlab: bool = Field(
        True, description="look for label errors with cleanlab (cross-validated TF-IDF + logistic regression)"
    )
    classifier_max_records: int = Field(20000, gt=0, description="seeded subset size for the label-error classifier")
    classifier_folds: int = Field(5, ge=2, description="cross-validation folds for out-of-sample probabilities")
    imbalance_ratio: float = Field(
        10.0, gt=1, description="warn when the largest label has more than this many times the records of the smallest"
    )
    language_min_confidence: float = Field(
        0.9, gt=0, le=1, description="language guesses below this probability count as unknown"
    )
    language_mix_share: float = Field(
        0.05, gt=0, lt=1, description="warn when records outside the main language have this share"
    )
    max_ids: int = Field(200, gt=0, description="ids kept per finding in audit.json (counts stay complete)")


class AugmentConfig(Section):
    """`deftune augment`: meaning-preserving variants of training records (back-translation, paraphrases by the
    base model), kept only when they pass every filter. It lives under `data` because it changes the training
    data and reuses `data.audit`'s MinHash settings for its near-duplicate-of-eval-data filter."""

    enabled: bool = Field(False, description="add accepted variants to the training split before training")
    methods: list[Literal["backtranslation", "paraphrase"]] = Field(["backtranslation", "paraphrase"])
    translator: Literal["auto", "apertium", "seq2seq", "llm"] = Field(
        "auto",
        description="back-translation engine; auto: seq2seq when its folders are set, else Apertium when "
        "installed, else the LLM",
    )
    source_language: str = Field("eng", description="language of the data (ISO 639-3, as Apertium names it)")
    pivot_language: str = Field("spa", description="language translated through (ISO 639-3)")
    seq2seq_to: str | None = Field(None, description="local seq2seq model folder translating into the pivot")
    seq2seq_back: str | None = Field(None, description="local seq2seq model folder translating back")
    model: str | None = Field(
        None, description="model spec that paraphrases (and translates with translator: llm); default model.spec"
    )
    candidates: int = Field(4, gt=0, description="paraphrase candidates generated per example")
    temperature: float = Field(0.9, gt=0, description="paraphrase sampling temperature")
    top_p: float = Field(0.95, gt=0, le=1, description="paraphrase nucleus sampling mass")
    max_new_tokens: int = Field(192, gt=0, description="generated tokens per paraphrase or translation at most")
    batch_size: int = Field(8, gt=0, description="prompts generated together")
    min_similarity: float = Field(
        0.8,
        ge=-1,
        le=1,
        description="cosine similarity to the source (all-MiniLM-L6-v2) below which a variant has drifted",
    )
    max_chrf: float = Field(90.0, gt=0, le=100, description="chrF to the source above which a variant is a near-copy")
    max_perplexity_ratio: float | None = Field(
        3.0,
        gt=0,
        description="fluency: a variant's perplexity under the paraphrasing model over its source's at "
        "most this (null: only the repeated-trigram check, no model needed)",
    )
    min_length_ratio: float = Field(0.6, gt=0, description="shortest variant, in words relative to the source")
    max_length_ratio: float = Field(1.6, gt=0, description="longest variant, in words relative to the source")
    min_entity_recall: float = Field(
        1.0, ge=0, le=1, description="share of the source's capitalised names a variant must keep"
    )
    numbers: bool = Field(True, description="a variant must keep exactly the source's numbers")
    label_agreement: bool = Field(
        True,
        description="classification: a TF-IDF + logistic regression classifier "
        "fitted on the original data must give the variant its label",
    )
    max_per_example: int = Field(2, gt=0, description="accepted variants kept per source record at most")
    max_share: float = Field(0.5, gt=0, lt=1, description="largest share of variants in the augmented training set")

    @model_validator(mode="after")
    def _consistent(self):
        if self.min_length_ratio > self.max_length_ratio:
            raise ValueError("min_length_ratio must not exceed max_length_ratio")
        if self.translator == "seq2seq" and not (self.seq2seq_to and self.seq2seq_back):
            raise ValueError("translator seq2seq needs seq2seq_to and seq2seq_back model folders")
        return self


class BalanceConfig(Section):
    """Balanced training data for `data.group_attribute`: reweighting or resampling (group, label) cells, and
    counterfactual copies with group terms swapped."""

    strategy: Literal["none", "reweight", "resample"] = Field(
        "none", description="balance (group, label): weights P(g)P(y)/P(g,y), or stratified resampling"
    )
    counterfactual: bool = Field(False, description="add copies of records with group terms swapped")
    swap_lexicon: dict[str, str] | None = Field(
        None, description="extra swap pairs for counterfactual copies (word -> word, applied both ways)"
    )

    @property
    def enabled(self) -> bool:
        return self.strategy != "none" or self.counterfactual


class DataConfig(Section):
    path: str = Field("embedded:bbc-news", description="dataset file/folder or an embedded dataset name")
    validation_path: str | None = None
    test_path: str | None = None
    format: Literal["auto", "chat", "completion", "text", "classification"] = "auto"
    labels: list[str] | None = Field(None, description="label set for classification (default: labels seen)")
    instruction: str = Field(
        "Classify the text into one of these categories: {labels}.\nAnswer with the category only.\n\nText:\n{text}",
        description="prompt for classification records; {labels} and {text} are filled in",
    )
    max_input_tokens: int = Field(128, gt=0, description="classification text is cut to this many tokens")
    max_length: int = Field(256, gt=0, description="longer rendered examples are dropped (and counted)")
    max_train_examples: int | None = Field(None, gt=0, description="seeded subset of the training split")
    max_validation_examples: int | None = Field(None, gt=0)
    split: SplitConfig = SplitConfig()
    audit: AuditConfig = AuditConfig()
    augment: AugmentConfig = AugmentConfig()
    balance: BalanceConfig = BalanceConfig()
    group_attribute: str = Field(
        "gender", description="protected attribute balanced, swapped and debiased (training.adversary)"
    )
