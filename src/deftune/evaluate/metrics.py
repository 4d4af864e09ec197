"""Task metrics as resamplable `Metric`s, so each gets a bootstrap interval and a paired test.

Classification: accuracy, macro/micro F1 (as scikit-learn computes them; an invalid answer is a miss for its gold class and a
prediction of no class), invalid-answer rate; per-class precision/recall/F1 and the confusion matrix as a report.
Generation: corpus BLEU, chrF and TER (sacrebleu, from its per-segment sufficient statistics, signatures kept),
ROUGE-L F1 (rouge-score), exact match and token F1 (SQuAD's normalisation). Calibration: expected calibration
error over equal-width confidence bins."""

from __future__ import annotations

import re
import string
from collections import Counter

import numpy as np

from ..core.bootstrap import Metric, mean_metric

INVALID = "(invalid)"
PUNCTUATION = set(string.punctuation)


def _codes(gold: list[str], predicted: list[str | None], labels: list[str]) -> np.ndarray:
    """(n, 2) integer codes of gold and predicted labels; an invalid prediction is len(labels)."""
    index = {label: i for i, label in enumerate(labels)}
    missing = sorted({g for g in gold if g not in index})
    if missing:
        raise ValueError(f"gold labels outside the label set: {missing}")
    return np.array(
        [
            [index[g], index.get(p, len(labels)) if p is not None else len(labels)]
            for g, p in zip(gold, predicted, strict=True)
        ],
        dtype=int,
    ).reshape(-1, 2)


def _f1(average: str, n_labels: int):
    """F1 over the label set as scikit-learn's f1_score(labels=range(k), zero_division=0) computes it, from counts
    (it is scored on every bootstrap resample, where calling scikit-learn dominated the evaluation's time):
    per class 2·TP / (predicted + gold); micro pools the counts over the classes, so an invalid answer (code k)
    is a miss for its gold class and a prediction of none."""

    def score(rows: np.ndarray) -> float:
        gold, predicted = rows[:, 0], rows[:, 1]
        hits = np.bincount(gold[gold == predicted], minlength=n_labels)[:n_labels]
        denominators = (
            np.bincount(predicted, minlength=n_labels + 1)[:n_labels] + np.bincount(gold, minlength=n_labels)[:n_labels]
        )
        if average == "micro":
            total = denominators.sum()
            return float(2 * hits.sum() / total) if total else 0.0
        per_class = np.divide(2 * hits, denominators, out=np.zeros(n_labels), where=denominators > 0)
        return float(per_class.mean())

    return score


def classification(gold: list[str], predicted: list[str | None], labels: list[str]) -> list[Metric]:
    """Headline classification metrics; `predicted` holds None where the answer named no label."""
    codes = _codes(gold, predicted, labels)
    k = len(labels)
    return [
        mean_metric("accuracy", codes[:, 0] == codes[:, 1]),
        Metric("macro_f1", codes, _f1("macro", k), "share"),
        Metric("micro_f1", codes, _f1("micro", k), "share"),
        mean_metric("invalid_rate", codes[:, 1] == k),
    ]


def classification_report(gold: list[str], predicted: list[str | None], labels: list[str]) -> dict:
    """Per-class precision, recall, F1 and support, and the confusion matrix (rows gold, columns predicted, with
    a column for invalid answers)."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    codes = _codes(gold, predicted, labels)
    k = len(labels)
    precision, recall, f1, support = precision_recall_fscore_support(
        codes[:, 0], codes[:, 1], labels=list(range(k)), zero_division=0
    )
    matrix = confusion_matrix(codes[:, 0], codes[:, 1], labels=list(range(k + 1)))[:k]
    return {
        "per_class": {
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
        "confusion_matrix": {
            "gold": labels,
            "predicted": labels + [INVALID],
            "counts": matrix.tolist(),
            "unit": "examples",
        },
    }


def normalize_answer(text: str) -> str:
    """SQuAD's answer normalisation: lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in PUNCTUATION)
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


def exact_match(hypothesis: str, reference: str) -> float:
    return float(normalize_answer(hypothesis) == normalize_answer(reference))


def token_f1(hypothesis: str, reference: str) -> float:
    """SQuAD's token-overlap F1 of normalised answers (1 when both are empty)."""
    hyp, ref = normalize_answer(hypothesis).split(), normalize_answer(reference).split()
    if not hyp or not ref:
        return float(hyp == ref)
    common = sum((Counter(hyp) & Counter(ref)).values())
    if not common:
        return 0.0
    precision, recall = common / len(hyp), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def rouge_l(hypotheses: list[str], references: list[str]) -> list[float]:
    from rouge_score.rouge_scorer import RougeScorer

    scorer = RougeScorer(["rougeL"])
    return [scorer.score(ref, hyp)["rougeL"].fmeasure for hyp, ref in zip(hypotheses, references, strict=True)]


def _sacrebleu(metric, hypotheses: list[str], references: list[str]) -> tuple[Metric, str]:
    stats = np.array(metric._extract_corpus_statistics(hypotheses, [references]), dtype=float)
    metric.corpus_score(hypotheses, [references])  # resolves the signature (number of references)
    name = type(metric).__name__.lower()
    return (
        Metric(name, stats, lambda rows: float(metric._compute_score_from_stats(rows.sum(axis=0)).score), "points"),
        str(metric.get_signature()),
    )


def generation(hypotheses: list[str], references: list[str]) -> tuple[list[Metric], dict[str, str]]:
    """Headline generation metrics and sacrebleu's signatures."""
    from sacrebleu.metrics import BLEU, CHRF, TER

    metrics, signatures = [], {}
    for sacre in (BLEU(), CHRF(), TER()):
        metric, signatures[type(sacre).__name__.lower()] = _sacrebleu(sacre, hypotheses, references)
        metrics.append(metric)
    pairs = list(zip(hypotheses, references, strict=True))
    metrics += [
        mean_metric("rouge_l", rouge_l(hypotheses, references)),
        mean_metric("exact_match", [exact_match(h, r) for h, r in pairs]),
        mean_metric("token_f1", [token_f1(h, r) for h, r in pairs]),
    ]
    return metrics, signatures


def expected_calibration_error(confidence, correct, bins: int = 10) -> Metric:
    """ECE: the average |accuracy - mean confidence| over equal-width confidence bins, weighted by bin size."""

    def score(rows: np.ndarray) -> float:
        which = np.minimum((rows[:, 0] * bins).astype(int), bins - 1)
        total = 0.0
        for b in np.unique(which):
            inside = rows[which == b]
            total += len(inside) * abs(inside[:, 1].mean() - inside[:, 0].mean())
        return total / len(rows)

    rows = np.column_stack([np.asarray(confidence, dtype=float), np.asarray(correct, dtype=float)])
    return Metric("ece", rows, score, "share")
