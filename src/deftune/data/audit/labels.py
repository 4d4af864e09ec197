"""Likely label errors: cleanlab's confident learning on out-of-sample probabilities of a cheap classifier
(TF-IDF + logistic regression, stratified cross-validation) over a seeded subset of the labelled records."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from cleanlab.filter import find_label_issues
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline

from .findings import CheckResult, Finding, mention, pct

if TYPE_CHECKING:
    from .context import Context


def _sample(ctx: Context) -> tuple[np.ndarray, str | None]:
    """Positions of the labelled records the classifier sees, or why there are none."""
    train, cfg = ctx.train, ctx.cfg
    labels = pd.Series(train.labels)
    sizes = labels.map(labels.value_counts())
    usable = np.flatnonzero(train.labelled & (sizes >= cfg.classifier_folds).to_numpy())
    if labels.iloc[usable].nunique() < 2:
        return usable[:0], f"fewer than two labels with at least {cfg.classifier_folds} records"
    if len(usable) > cfg.classifier_max_records:
        usable = np.sort(np.random.default_rng(ctx.seed).choice(usable, cfg.classifier_max_records, replace=False))
    return usable, None


def run(ctx: Context) -> CheckResult:
    train, cfg = ctx.train, ctx.cfg
    if not cfg.cleanlab:
        return CheckResult({"skipped": "data.audit.cleanlab is off"})
    positions, reason = _sample(ctx)
    if reason:
        return CheckResult({"skipped": reason})
    labels = pd.Categorical(train.labels[positions])
    texts = [train.contents[p] for p in positions]
    classifier = make_pipeline(
        TfidfVectorizer(sublinear_tf=True, max_features=cfg.vocabulary),
        LogisticRegression(solver="saga", C=10, max_iter=1000, random_state=ctx.seed),
    )
    folds = StratifiedKFold(n_splits=cfg.classifier_folds, shuffle=True, random_state=ctx.seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        probabilities = cross_val_predict(classifier, texts, labels.codes, cv=folds, method="predict_proba")
    ranked = find_label_issues(labels.codes, probabilities, return_indices_ranked_by="self_confidence")
    suggested = probabilities.argmax(axis=1)
    issues = [
        {
            "id": train.ids[positions[i]],
            "label": labels.categories[labels.codes[i]],
            "suggested": labels.categories[suggested[i]],
            "label_probability": float(probabilities[i, labels.codes[i]]),
        }
        for i in ranked
    ]
    data = {
        "checked": len(positions),
        "classifier": "TF-IDF + logistic regression",
        "folds": cfg.classifier_folds,
        "out_of_sample_accuracy": float((suggested == labels.codes).mean()),
        "issues": len(issues),
        "likely_errors": issues[: cfg.max_ids],
    }
    if not issues:
        return CheckResult(data)
    ids = [issue["id"] for issue in issues]
    examples = "; ".join(f"{i['id']} labelled '{i['label']}', looks like '{i['suggested']}'" for i in issues[:3])
    return CheckResult(
        data,
        [
            Finding(
                "labels",
                "warning",
                "label-errors",
                f"{len(issues)} of {len(positions)} checked records ({pct(len(issues) / len(positions))}) look mislabelled "
                f"(cleanlab, out-of-sample TF-IDF + logistic regression), e.g. {examples}; all: {mention(ids)}",
                ids,
            )
        ],
    )
