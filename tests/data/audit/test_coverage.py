import numpy as np
import pytest

from deftune.data.audit.coverage import log_odds

from .crafted import classification, codes, sentences


def test_eval_topic_missing_from_training_and_a_dominant_topic(run_audit):
    train = classification({"sport": sentences("sport", 40), "tech": sentences("tech", 2)})
    evals = classification(
        {"sport": sentences("sport", 10, start=40), "tech": sentences("tech", 10, start=2)}, prefix="eval-"
    )
    result = run_audit(train, evals, topics=2)
    found = codes(result, "coverage")
    assert set(found["coverage-gap"]) == {f"eval-tech-{i}" for i in range(10)}
    assert set(found["dominant-topic"]) == {f"sport-{i}" for i in range(40)}
    topics = result.checks["coverage"]["topics"]
    assert sorted(t["train"] for t in topics) == [2, 40] and all(len(t["keywords"]) == 8 for t in topics)


def test_balanced_topics_covered_by_training_raise_nothing(run_audit):
    train = classification({"sport": sentences("sport", 20), "tech": sentences("tech", 20)})
    evals = classification(
        {"sport": sentences("sport", 5, start=20), "tech": sentences("tech", 5, start=20)}, prefix="eval-"
    )
    assert not codes(run_audit(train, evals, topics=2), "coverage")


def test_distinctive_label_keywords(run_audit):
    result = run_audit(classification({"sport": sentences("sport", 20), "tech": sentences("tech", 20)}))
    keywords = result.checks["coverage"]["label_keywords"]
    top = {label: {k["term"] for k in words[:5]} for label, words in keywords.items()}
    assert top["sport"] <= {
        "minute",
        "striker",
        "goalkeeper",
        "coach",
        "captain",
        "defender",
        "winger",
        "penalty",
        "missed",
        "scored",
        "twice",
        "final",
        "referee",
        "derby",
        "league",
        "match",
        "cup",
        "semi",
        "sent",
        "celebrated",
        "criticised",
        "saturday",
        "rain",
        "home",
        "stadium",
    }
    assert "dollars" in top["tech"] and "costing" in top["tech"]


def test_log_odds_follows_monroe_et_al():
    counts = np.array([[10.0, 0.0, 5.0], [2.0, 8.0, 5.0]])
    prior = np.array([3.0, 2.0, 1.0])
    z = log_odds(counts, prior)
    # term 0 of group 0 against group 1, written out from Monroe, Colaresi & Quinn (2008), eq. 16 and 18
    a0, n0, n1 = prior.sum(), counts[0].sum(), counts[1].sum()
    delta = np.log((10 + 3) / (n0 + a0 - 10 - 3)) - np.log((2 + 3) / (n1 + a0 - 2 - 3))
    assert z[0, 0] == pytest.approx(delta / np.sqrt(1 / 13 + 1 / 5))
    assert z[1, 0] == pytest.approx(-z[0, 0]) and z[0, 1] < 0 < z[0, 0]
    assert z[0, 2] == pytest.approx(0)  # the same count in groups of the same size
