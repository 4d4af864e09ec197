"""Topics of a collection of texts: an NMF topic model fitted on TF-IDF. The data audit reports them, the split
can hold one out, evaluation slices by them."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.decomposition import NMF
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer

from ..config import AuditConfig

WORDS = r"(?u)\b[^\W\d_]{2,}\b"  # words of two or more letters


@dataclass
class Topics:
    """An NMF topic model fitted on TF-IDF: each text's topic (-1 where none of its words was kept)."""

    assigned: np.ndarray
    keywords: list[list[str]]  # per topic, its top terms
    terms: int
    iterations: int

    def name(self, topic: int) -> str | None:
        return "/".join(self.keywords[topic][:3]) if topic >= 0 else None


def fit_topics(texts: list[str], cfg: AuditConfig, seed: int) -> Topics | str:
    """Fit cfg.topics topics on the texts; the reason as a string when there are too few texts or words."""
    vectorizer = TfidfVectorizer(
        stop_words="english", token_pattern=WORDS, max_features=cfg.vocabulary, sublinear_tf=True, max_df=0.95
    )
    try:
        tfidf = vectorizer.fit_transform(texts)
    except ValueError:  # nothing but stop words, digits or punctuation
        return "no words left for topic modelling"
    k = min(cfg.topics, tfidf.shape[0] - 1, tfidf.shape[1])
    if k < 2:
        return "too few texts or words for two topics"
    nmf = NMF(n_components=k, init="nndsvda", max_iter=300, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        weights = nmf.fit_transform(tfidf)
    terms = vectorizer.get_feature_names_out()
    return Topics(
        np.where(weights.max(axis=1) > 0, weights.argmax(axis=1), -1),
        [list(terms[np.argsort(-row)[: cfg.topic_keywords]]) for row in nmf.components_],
        tfidf.shape[1],
        int(nmf.n_iter_),
    )
