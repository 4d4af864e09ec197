import random
from pathlib import Path

import numpy as np
import pytest

from deftune.config import EvaluationConfig
from deftune.data.records import Record
from deftune.evaluate import stress

TEXT = "The firm said profits rose sharply, and the boss was pleased."
LABELS = ["sport", "tech"]
CFG = EvaluationConfig(resamples=100)


def test_typo_swaps_two_inner_letters_of_a_word():
    out = stress.typo(TEXT, random.Random(0))
    changed = [(a, b) for a, b in zip(TEXT.split(), out.split()) if a != b]
    assert len(out) == len(TEXT) and len(changed) == 1
    before, after = changed[0]
    assert sorted(before) == sorted(after) and before[0] == after[0] and before[-1] == after[-1]


def test_casing_punctuation_and_whitespace_rules():
    assert stress.casing(TEXT, None) == TEXT.lower() and stress.casing("abc", None) == "ABC"
    assert stress.punctuation(TEXT, None) == "The firm said profits rose sharply and the boss was pleased"
    assert stress.punctuation("no marks", None) == "no marks."
    spaced = stress.whitespace(TEXT, random.Random(0))
    assert spaced.split() == TEXT.split() and spaced.endswith("\n") and "  " in spaced


def test_synonym_swaps_from_the_built_in_list_when_wordnet_is_absent(tmp_path):
    swap = stress.Synonyms(str(tmp_path / "no-wordnet"))
    out = swap(TEXT, random.Random(0))
    changed = [(a, b) for a, b in zip(TEXT.split(), out.split()) if a != b]
    assert swap.source == "built-in list" and len(changed) == 1
    assert stress.SYNONYMS[changed[0][0].strip(",.").lower()] == changed[0][1].strip(",.").lower()
    assert swap("Xylophone zebra", random.Random(0)) == "Xylophone zebra"


@pytest.mark.skipif(not Path("/usr/share/wordnet/data.noun").is_file(), reason="Debian wordnet-base not installed")
def test_synonym_swaps_from_wordnet():
    swap = stress.Synonyms("/usr/share/wordnet")
    assert swap.source.startswith("WordNet 3.0") and swap.synonym("rival") == "challenger"
    assert swap.synonym("Rival") == "Challenger" and swap.synonym("officials") is None  # inflected: skipped


def test_paraphrases_are_kept_only_when_they_differ_and_keep_the_length():
    assert stress.accept_paraphrase("a b c d", "w x y z q")
    assert not stress.accept_paraphrase("a b c d", "a b c d") and not stress.accept_paraphrase("a b c d", "x")


def _records(texts, labels, **meta):
    return [
        Record(id=str(i), format="classification", text=t, label=y, meta=dict(meta))
        for i, (t, y) in enumerate(zip(texts, labels))
    ]


def _keyword_system(confidence=0.9):
    """'sport' when the text says 'goal' (case-sensitive), else 'tech'; the chosen label gets `confidence`."""

    def probabilities(records):
        sport = np.array(["goal" in r.text for r in records])
        return np.where(sport[:, None], [confidence, 1 - confidence], [1 - confidence, confidence])

    return stress.System("keyword", probabilities, lambda records: [None] * len(records))


def test_invariance_flip_rate_worst_case_accuracy_and_candidate_records(tmp_path):
    records = _records(
        ["a late goal won it", "new chip, faster phone", "Another GOAL today"], ["sport", "tech", "sport"], topic="news"
    )
    variants, notes = stress.rephrasings(
        records, ["casing", "punctuation"], wordnet_dir=str(tmp_path), seed=0, paraphrase=None
    )
    assert notes["unchanged"] == {"casing": 0, "punctuation": 0}  # a text without marks gets a full stop
    result, failed = stress.invariance(_keyword_system(), records, variants, LABELS, CFG, seed=0)
    casing = result["perturbations"]["casing"]
    # casing: "A LATE GOAL WON IT" loses 'goal' (flip, wrong); "new chip..." -> upper, still tech; record 3 ->
    # "another goal today" gains 'goal' (flip, now right)
    assert casing["flip_rate"]["value"] == pytest.approx(2 / 3)
    assert casing["accuracy"]["value"] == pytest.approx(2 / 3)
    assert result["accuracy"]["value"] == pytest.approx(2 / 3)
    assert result["worst_case_accuracy"]["value"] == pytest.approx(1 / 3)
    # every variant the model gets wrong is a candidate (record 2 is wrong with and without punctuation)
    assert [r.id for r in failed] == ["0~casing", "2~punctuation"] and failed[0].label == "sport"
    assert failed[0].meta == {"topic": "news", "stress": "inv/casing", "source_id": "0"}


def test_held_out_topics_report_the_accuracy_drop_and_calibration():
    records = _records(["goal", "goal", "chip", "goal", "chip", "goal"], ["sport"] * 2 + ["tech"] * 2 + ["tech"] * 2)
    for r, topic in zip(records, "aabbzz"):
        r.meta["topic"] = topic
    train = _records(["x"] * 10, ["sport"] * 10)
    for r, topic in zip(train, "aaaaabbbbb"):
        r.meta["topic"] = topic
    probs = _keyword_system().probabilities(records)
    gold = np.array([LABELS.index(r.label) for r in records])

    def topics(rs):
        return [r.meta["topic"] for r in rs]

    result = stress.held_out(topics(records), topics(train), probs, gold, "topic", CFG, seed=0)
    assert result["held_out_values"] == ["z"] and result["train_share"]["z"] == 0
    assert result["in_distribution"]["accuracy"]["value"] == pytest.approx(0.75)
    assert result["held_out"]["accuracy"]["value"] == pytest.approx(0.5)
    assert result["accuracy_drop"]["value"] == pytest.approx(0.25)
    assert result["held_out"]["ece"]["value"] == pytest.approx(0.4)  # confidence 0.9, accuracy 0.5
    none = stress.held_out(topics(records), topics(records), probs, gold, "topic", CFG, seed=0)
    assert "skipped" in none


def test_ambiguous_inputs_mix_two_labels_or_carry_no_information():
    records = _records(["a late goal won the cup", "the new chip is fast"], ["sport", "tech"])
    made = stress.ambiguous_inputs(records, 6, seed=0)
    assert [k for k, _, _ in made] == ["mixed"] * 3 + ["uninformative"] * 3
    kind, mixed, labels = made[0]
    assert set(labels) == {"sport", "tech"} and len(mixed.text.split()) == 3 + 2
    vague = made[3][1].text
    assert made[3][2] == () and sum(vague.count(s) for s in stress.UNINFORMATIVE) == 2


def test_false_confidence_under_both_expectations():
    records = _records(["a late goal won the cup", "the new chip is fast"], ["sport", "tech"])
    made = stress.ambiguous_inputs(records, 4, seed=0)
    spread = stress.ambiguity(_keyword_system(0.9), made, LABELS, CFG, seed=0)
    assert spread["mixed"]["false_confidence_rate"]["value"] == 1
    assert spread["mixed"]["mass_on_the_two_labels"]["value"] == pytest.approx(1)
    calm = stress.ambiguity(_keyword_system(0.6), made, LABELS, CFG, seed=0)
    assert calm["uninformative"]["false_confidence_rate"]["value"] == 0
    abstain = stress.ambiguity(
        _keyword_system(0.9), made, LABELS, EvaluationConfig(resamples=100, ambiguity_expectation="abstain"), seed=0
    )
    assert abstain["mixed"]["false_confidence_rate"]["value"] == 0  # the system's answers name no label
