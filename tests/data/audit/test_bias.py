import pytest

from deftune.data.audit.bias import LEXICON, detect

from .crafted import classification, codes, sentences


def test_detects_group_terms_per_attribute():
    hits = detect(
        ["She met the elderly pensioners.", "His church", "Nothing here", "Old people and a Muslim man"],
        {"gender": LEXICON["gender"], "age": LEXICON["age"], "religion": LEXICON["religion"]},
    )
    assert hits["gender"]["female"].tolist() == [True, False, False, False]
    assert hits["gender"]["male"].tolist() == [False, True, False, True]
    assert hits["age"]["old"].tolist() == [True, False, False, True]  # two-word terms too
    assert hits["religion"][["christian", "muslim"]].any(axis=1).tolist() == [False, True, False, True]


def test_a_skewed_gender_found_through_the_lexicon(run_audit):
    texts = [f"{t} He said it was fair." for t in sentences("sport", 40)]
    texts += [f"{t} She said it was fair." for t in sentences("sport", 2, start=40)]
    result = run_audit(classification({"sport": texts}))
    assert codes(result, "bias")["under-represented"] == ["sport-40", "sport-41"]
    gender = result.checks["bias"]["attributes"]["gender"]
    assert gender["groups"]["female"] == {"records": 2, "share": pytest.approx(2 / 42)}
    assert result.checks["bias"]["source"].endswith("(lexicon)")


def test_label_rates_that_differ_across_groups_of_the_group_field(run_audit):
    sport, tech = sentences("sport", 33), sentences("tech", 27)
    north = classification({"sport": sport[:27], "tech": tech[:3]}, prefix="n-", group={"region": "north"})
    south = classification({"sport": sport[27:], "tech": tech[3:]}, prefix="s-", group={"region": "south"})
    result = run_audit(north + south)
    parity = result.checks["bias"]["attributes"]["region"]["parity"]["labels"]
    assert parity["sport"]["difference"] == pytest.approx(0.7)
    assert parity["sport"]["ratio"] == pytest.approx(6 / 27)
    flagged = [f for f in result.findings if f.code == "label-parity"]
    assert {f.message.split("'")[1] for f in flagged} == {"sport", "tech"}
    sport_finding = next(f for f in flagged if "'sport'" in f.message)
    assert set(sport_finding.ids) == {r.id for r in south}
    assert "under-represented" not in codes(result)


def test_configured_lexicon_adds_an_attribute(run_audit):
    texts = [f"{t} The vegan menu." for t in sentences("tech", 10)]
    texts += [f"{t} A steak." for t in sentences("tech", 10, start=10)]
    result = run_audit(classification({"tech": texts}), lexicon={"diet": {"vegan": ["vegan"], "meat": ["steak"]}})
    diet = result.checks["bias"]["attributes"]["diet"]
    assert diet["groups"]["vegan"]["records"] == diet["groups"]["meat"]["records"] == 10
    assert "gender" in result.checks["bias"]["attributes"]
