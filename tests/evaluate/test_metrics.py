import numpy as np
import pytest
import sacrebleu
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

from deftune.core import bootstrap
from deftune.evaluate import metrics

LABELS = ["business", "sport", "tech"]
GOLD = ["sport", "sport", "tech", "business", "tech", "business", "sport", "tech"]
PRED = ["sport", "tech", "tech", None, "tech", "sport", "sport", None]


def _by_name(found):
    return {m.name: m for m in found}


def test_classification_metrics_equal_scikit_learn():
    got = _by_name(metrics.classification(GOLD, PRED, LABELS))
    as_sklearn = [p if p is not None else "(invalid)" for p in PRED]
    assert got["accuracy"].value == pytest.approx(accuracy_score(GOLD, as_sklearn))
    for average in ("macro", "micro"):
        expected = f1_score(GOLD, as_sklearn, labels=LABELS, average=average, zero_division=0)
        assert got[f"{average}_f1"].value == pytest.approx(expected)
    assert got["invalid_rate"].value == pytest.approx(2 / 8)

    report = metrics.classification_report(GOLD, PRED, LABELS)
    p, r, f, s = precision_recall_fscore_support(GOLD, as_sklearn, labels=LABELS, zero_division=0)
    assert [report["per_class"][c]["f1"] for c in LABELS] == pytest.approx(list(f))
    assert [report["per_class"][c]["recall"] for c in LABELS] == pytest.approx(list(r))
    # rows gold business/sport/tech; columns the labels then invalid (counted by hand)
    assert report["confusion_matrix"]["counts"] == [[0, 1, 0, 1], [0, 2, 1, 0], [0, 0, 2, 1]]


def test_generation_metrics_equal_sacrebleu_and_hand_computed_cases():
    hyps = ["the cat sat on the mat", "a dog barked loudly today", "hello world"]
    refs = ["the cat sat on a mat", "the dog barked loudly", "hello there world"]
    got, signatures = metrics.generation(hyps, refs)
    got = _by_name(got)
    assert got["bleu"].value == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score)
    assert got["chrf"].value == pytest.approx(sacrebleu.corpus_chrf(hyps, [refs]).score)
    assert got["ter"].value == pytest.approx(sacrebleu.corpus_ter(hyps, [refs]).score)
    assert signatures["bleu"].startswith("nrefs:1|") and "tok:13a" in signatures["bleu"]
    assert got["exact_match"].value == pytest.approx(1 / 3)  # articles are ignored: only the first matches
    # ROUGE-L by hand: "the cat sat" vs "the cat was sat": LCS 3, P = 3/3, R = 3/4, F = 6/7
    assert metrics.rouge_l(["the cat sat"], ["the cat was sat"]) == pytest.approx([6 / 7])
    # token F1 by hand: "red big ball" vs "big red box": 2 common, P = R = 2/3
    assert metrics.token_f1("red big ball", "big red box") == pytest.approx(2 / 3)
    assert metrics.token_f1("", "") == 1 and metrics.token_f1("x", "") == 0


def test_expected_calibration_error_hand_computed():
    # bin [0.9, 1]: conf .95, .95, acc 1/2 -> gap .45, weight 2/4; bin [0.6, 0.7): conf .6, .6, acc 1 -> .4, 2/4
    ece = metrics.expected_calibration_error([0.95, 0.95, 0.6, 0.6], [1, 0, 1, 1], bins=10)
    assert ece.value == pytest.approx(0.5 * 0.45 + 0.5 * 0.4)


def _accuracy(n, share, seed=0):
    correct = np.random.default_rng(seed).random(n) < share
    return bootstrap.mean_metric("accuracy", correct)


def test_bootstrap_interval_contains_the_estimate_and_shrinks_with_n():
    widths = []
    for n in (25, 100, 400):
        metric = _accuracy(n, 0.7)
        ci = bootstrap.interval(metric, resamples=500, confidence=0.95, seed=1)
        assert ci["low"] <= ci["value"] <= ci["high"] and ci["n"] == n
        widths.append(ci["high"] - ci["low"])
    assert widths[0] > widths[1] > widths[2]
    macro = metrics.classification(GOLD * 5, PRED * 5, LABELS)[1]
    ci = bootstrap.interval(macro, resamples=300, confidence=0.9, seed=1)
    assert ci["low"] <= ci["value"] <= ci["high"] and ci["confidence"] == 0.9


def test_paired_test_separates_equal_from_different_systems():
    base = _accuracy(200, 0.5, seed=1)
    same = bootstrap.paired(base, base, resamples=300, confidence=0.95, seed=2)
    assert same["difference"] == 0 and same["p_value"] == 1
    better = bootstrap.mean_metric("accuracy", np.maximum(base.rows[:, 0], np.arange(200) % 2))
    result = bootstrap.paired(base, better, resamples=300, confidence=0.95, seed=2)
    assert result["difference"] > 0 and result["low"] > 0 and result["p_value"] < 0.01


def test_paired_randomisation_p_value_agrees_with_sacrebleu():
    from sacrebleu.metrics import BLEU
    from sacrebleu.significance import PairedTest

    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(30)]
    refs = [" ".join(rng.choice(words, 8)) for _ in range(60)]

    def noisy(ref, p):
        return " ".join(w if rng.random() > p else rng.choice(words) for w in ref.split())

    base, tuned = [noisy(r, 0.5) for r in refs], [noisy(r, 0.45) for r in refs]
    ours = bootstrap.paired(
        metrics.generation(base, refs)[0][0],
        metrics.generation(tuned, refs)[0][0],
        resamples=2000,
        confidence=0.95,
        seed=3,
    )
    _, results = PairedTest(
        [("base", base), ("tuned", tuned)], {"BLEU": BLEU()}, [refs], test_type="ar", n_samples=2000
    )()
    theirs = results["BLEU"][1].p_value
    assert 0.02 < theirs < 0.98  # an undecided case, where the two estimates can be compared
    assert ours["p_value"] == pytest.approx(theirs, abs=0.05)


@pytest.mark.parametrize("seed", range(5))
def test_f1_from_counts_equals_scikit_learn_on_random_resamples(seed):
    """The F1 scorer every bootstrap resample calls, against scikit-learn on data with invalid answers and classes
    absent from a resample."""
    rng = np.random.default_rng(seed)
    labels = ["a", "b", "c", "d"]
    gold = list(rng.choice(labels[:3], size=40))  # "d" never gold
    predicted = [None if rng.random() < 0.15 else str(rng.choice(labels)) for _ in gold]
    found = {m.name: m for m in metrics.classification(gold, predicted, labels)}
    as_sklearn = [p if p is not None else "(invalid)" for p in predicted]
    for average in ("macro", "micro"):
        metric = found[f"{average}_f1"]
        for idx in rng.integers(0, len(gold), size=(20, len(gold))):
            expected = f1_score(
                [gold[i] for i in idx], [as_sklearn[i] for i in idx], labels=labels, average=average, zero_division=0
            )
            assert metric.score(metric.rows[idx]) == pytest.approx(expected)
