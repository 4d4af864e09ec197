"""Label agreement among annotators (records' ``annotations``, one label per annotator, None where one did not
label): Cohen's kappa for every pair of annotators (scikit-learn), Fleiss' kappa over the records every annotator
labelled (statsmodels), Krippendorff's alpha at the nominal level (missing labels allowed), per-class agreement,
the most disputed records, and records whose label differs from the annotators' majority."""

from __future__ import annotations

from itertools import combinations
from typing import TYPE_CHECKING

import numpy as np
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import fleiss_kappa

from ..records import majority
from .findings import CheckResult, Finding, mention

if TYPE_CHECKING:
    from .context import Context


def ratings(annotations: list[list[str | None]]) -> tuple[np.ndarray, list[str]]:
    """A units × annotators matrix of category codes (-1 where missing) and the sorted categories."""
    categories = sorted({a for row in annotations for a in row if a is not None})
    code = {c: i for i, c in enumerate(categories)}
    width = max(map(len, annotations))
    matrix = np.full((len(annotations), width), -1)
    for u, row in enumerate(annotations):
        matrix[u, : len(row)] = [-1 if a is None else code[a] for a in row]
    return matrix, categories


def value_counts(matrix: np.ndarray, n_categories: int) -> np.ndarray:
    """Units × categories: how many annotators gave each category to each unit."""
    units, _ = np.nonzero(matrix >= 0)
    counts = np.zeros((len(matrix), n_categories))
    np.add.at(counts, (units, matrix[matrix >= 0]), 1)
    return counts


def coincidences(counts: np.ndarray) -> np.ndarray:
    """Krippendorff's coincidence matrix over the units with at least two values."""
    m = counts.sum(axis=1)
    counts, m = counts[m >= 2], m[m >= 2]
    weighted = counts / (m - 1)[:, None]
    return weighted.T @ counts - np.diag(weighted.sum(axis=0))


def krippendorff_alpha(counts: np.ndarray) -> float:
    """Krippendorff's alpha for nominal data: 1 - observed / expected disagreement (NaN if nothing varies)."""
    o = coincidences(counts)
    n_c = o.sum(axis=1)
    n = n_c.sum()
    expected = (n * n - (n_c * n_c).sum()) / (n - 1) if n > 1 else 0.0
    return 1 - (n - np.trace(o)) / expected if expected > 0 else float("nan")


def unit_agreement(counts: np.ndarray) -> np.ndarray:
    """Per unit, the share of pairs of its annotators that agree (NaN with fewer than two labels)."""
    m = counts.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (counts * (counts - 1)).sum(axis=1) / (m * (m - 1))


def pairwise_cohen(matrix: np.ndarray) -> list[dict]:
    pairs = []
    for a, b in combinations(range(matrix.shape[1]), 2):
        both = (matrix[:, a] >= 0) & (matrix[:, b] >= 0)
        if both.sum() >= 2 and len(np.unique(matrix[both][:, [a, b]])) >= 2:
            pairs.append(
                {
                    "annotators": [a, b],
                    "records": int(both.sum()),
                    "kappa": float(cohen_kappa_score(matrix[both, a], matrix[both, b])),
                }
            )
    return pairs


def _fleiss(counts: np.ndarray, annotators: int) -> dict:
    complete = counts[counts.sum(axis=1) == annotators]
    kappa = fleiss_kappa(complete) if len(complete) >= 2 and annotators >= 2 else float("nan")
    return {"kappa": kappa, "records": len(complete), "note": "records labelled by every annotator"}


def run(ctx: Context) -> CheckResult:
    train, cfg = ctx.train, ctx.cfg
    annotated = [i for i, r in enumerate(train.records) if r.annotations and sum(a is not None for a in r.annotations)]
    if not annotated:
        return CheckResult({"annotated": 0})
    ids = train.ids[annotated]
    matrix, categories = ratings([train.records[i].annotations for i in annotated])
    counts = value_counts(matrix, len(categories))
    o = coincidences(counts)
    per_class = {c: (float(o[i, i] / o[i].sum()) if o[i].sum() else None) for i, c in enumerate(categories)}
    agreement = unit_agreement(counts)
    disputed = [u for u in np.argsort(agreement, kind="stable") if agreement[u] < 1][: cfg.disputed]
    alpha = krippendorff_alpha(counts)
    data = {
        "annotated": len(annotated),
        "annotators": matrix.shape[1],
        "categories": categories,
        "cohen_kappa": pairwise_cohen(matrix),
        "fleiss_kappa": _fleiss(counts, matrix.shape[1]),
        "krippendorff_alpha": {"alpha": alpha, "level": "nominal"},
        "per_class_agreement": {"unit": "share of pairable values matched by the same class", **per_class},
        "most_disputed": [
            {
                "id": ids[u],
                "agreement": agreement[u],
                "labels": {categories[c]: int(counts[u, c]) for c in np.flatnonzero(counts[u])},
            }
            for u in disputed
        ],
    }
    findings = []
    if np.isfinite(alpha) and alpha < cfg.min_agreement:
        findings.append(
            Finding(
                "agreement",
                "warning",
                "low-agreement",
                f"annotators agree poorly: Krippendorff's alpha (nominal) is {alpha:.2f}, below "
                f"{cfg.min_agreement}; most disputed: {mention(ids[disputed])}",
                list(ids[disputed]),
            )
        )
    for c, (name, share) in enumerate(per_class.items()):
        if share is not None and share < cfg.min_agreement:
            involved = list(ids[(counts[:, c] > 0) & (agreement < 1)])
            findings.append(
                Finding(
                    "agreement",
                    "warning",
                    "class-disagreement",
                    f"annotators rarely agree on '{name}': {100 * share:.0f}% of its pairable "
                    f"values are matched by another '{name}'; disputed records: {mention(involved)}",
                    involved,
                )
            )
    if disputed:
        findings.append(
            Finding(
                "agreement",
                "info",
                "disputed",
                f"{int((agreement < 1).sum())} annotated records have disagreeing labels; most "
                f"disputed: {mention(ids[disputed])}",
                list(ids[disputed]),
            )
        )
    findings += _label_vs_majority(ctx, annotated)
    return CheckResult(data, findings)


def _label_vs_majority(ctx: Context, annotated: list[int]) -> list[Finding]:
    records = [ctx.train.records[i] for i in annotated]
    odd = [r.id for r in records if r.label is not None and majority(r.annotations) not in (None, r.label)]
    if not odd:
        return []
    return [
        Finding(
            "agreement",
            "warning",
            "label-vs-annotators",
            f"{len(odd)} records carry a label that differs from their annotators' majority: {mention(odd)}",
            odd,
        )
    ]
