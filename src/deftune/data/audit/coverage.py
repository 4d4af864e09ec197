"""Domain coverage: NMF topics over TF-IDF (top keywords, sizes), a dominant-topic flag, eval topics that are thin
or missing in training, and each label's distinctive keywords (weighted log-odds with an informative Dirichlet
prior, Monroe, Colaresi & Quinn 2008)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix
from sklearn.feature_extraction.text import CountVectorizer

from ...core.topics import WORDS, fit_topics
from .findings import CheckResult, Finding, mention, pct

if TYPE_CHECKING:
    from .context import Context


def _topics(ctx: Context) -> tuple[dict, list[Finding]]:
    train, evals = ctx.train, ctx.eval
    fitted = fit_topics(train.contents + (evals.contents if evals is not None else []), ctx.cfg, ctx.seed)
    if isinstance(fitted, str):
        return {"topics": None, "skipped": fitted}, []
    k = len(fitted.keywords)
    in_train, in_eval = fitted.assigned[: len(train)], fitted.assigned[len(train) :]
    n_eval = max(len(in_eval), 1)
    topics = [
        {
            "topic": t,
            "keywords": fitted.keywords[t],
            "train": int((in_train == t).sum()),
            "train_share": float((in_train == t).mean()),
            "eval": int((in_eval == t).sum()) if evals is not None else None,
            "eval_share": float((in_eval == t).sum() / n_eval) if evals is not None else None,
        }
        for t in range(k)
    ]
    data = {
        "topics": topics,
        "unassigned": {"train": int((in_train < 0).sum()), "eval": int((in_eval < 0).sum())},
        "model": f"NMF ({k} topics) on TF-IDF of {fitted.terms} terms",
        "iterations": fitted.iterations,
    }
    return data, _dominant(ctx, topics, in_train) + (_gaps(ctx, topics, in_eval) if evals is not None else [])


def _name(topic: dict) -> str:
    return "/".join(topic["keywords"][:3])


def _dominant(ctx: Context, topics: list[dict], in_train: np.ndarray) -> list[Finding]:
    top = max(topics, key=lambda t: t["train_share"])
    if top["train_share"] <= ctx.cfg.dominant_topic_share:
        return []
    ids = list(ctx.train.ids[in_train == top["topic"]])
    return [
        Finding(
            "coverage",
            "warning",
            "dominant-topic",
            f"one topic ({_name(top)}) holds {pct(top['train_share'])} of the training records: {mention(ids)}",
            ids,
        )
    ]


def _gaps(ctx: Context, topics: list[dict], in_eval: np.ndarray) -> list[Finding]:
    cfg, findings = ctx.cfg, []
    for t in topics:
        if t["eval_share"] < cfg.coverage_min_eval_share or t["train_share"] >= cfg.coverage_ratio * t["eval_share"]:
            continue
        ids = list(ctx.eval.ids[in_eval == t["topic"]])
        state = "missing from" if t["train"] == 0 else "thin in"
        findings.append(
            Finding(
                "coverage",
                "warning",
                "coverage-gap",
                f"eval topic {_name(t)} is {state} the training data: {pct(t['eval_share'])} of eval records but "
                f"{pct(t['train_share'])} of training records ({t['train']}); eval records: {mention(ids)}",
                ids,
            )
        )
    return findings


def log_odds(counts: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """z-scores of each row's weighted log-odds against all other rows, with an informative Dirichlet prior.

    counts: (groups, terms) term counts per group; prior: (terms,) Dirichlet pseudo-counts.
    """
    alpha0 = prior.sum()
    rest = counts.sum(axis=0) - counts
    n, n_rest = counts.sum(axis=1, keepdims=True), rest.sum(axis=1, keepdims=True)
    delta = np.log((counts + prior) / (n + alpha0 - counts - prior)) - np.log(
        (rest + prior) / (n_rest + alpha0 - rest - prior)
    )
    return delta / np.sqrt(1 / (counts + prior) + 1 / (rest + prior))


def _label_keywords(ctx: Context) -> dict:
    train, cfg = ctx.train, ctx.cfg
    labelled = train.labelled
    labels = pd.Categorical(train.labels[labelled])
    if len(labels.categories) < 2:
        return {"label_keywords": None}
    texts = [t for t, keep in zip(train.contents, labelled) if keep]
    vectorizer = CountVectorizer(stop_words="english", token_pattern=WORDS, max_features=cfg.vocabulary)
    try:
        counts = vectorizer.fit_transform(texts)
    except ValueError:
        return {"label_keywords": None}
    membership = csr_matrix(
        (np.ones(len(labels)), (labels.codes, np.arange(len(labels)))), shape=(len(labels.categories), len(labels))
    )
    per_label = np.asarray((membership @ counts).todense(), dtype=float)
    z = log_odds(per_label, prior=per_label.sum(axis=0))  # the pooled corpus as the prior
    terms = vectorizer.get_feature_names_out()
    keywords = {}
    for row, label in enumerate(labels.categories):
        best = np.argsort(-z[row])[: cfg.label_keywords]
        keywords[label] = [{"term": terms[j], "z": float(z[row, j]), "count": int(per_label[row, j])} for j in best]
    return {
        "label_keywords": keywords,
        "label_keywords_method": "weighted log-odds vs the other labels, Dirichlet prior = pooled counts (z-scores)",
    }


def run(ctx: Context) -> CheckResult:
    data, findings = _topics(ctx)
    data.update(_label_keywords(ctx))
    return CheckResult(data, findings)
