from deftune.data.audit.duplicates import normalise
from deftune.data.records import Record

from .crafted import classification, codes, sentences


def test_normalising_ignores_case_spacing_and_punctuation():
    assert normalise(["  The CUP final,  on Saturday!", "the cup final on saturday"]).nunique() == 1


def test_planted_exact_near_and_conflicting_duplicates(run_audit):
    sport, tech = sentences("sport", 30), sentences("tech", 30)
    records = classification({"sport": sport, "tech": tech})
    original = sport[3]
    records += [
        Record(id="exact", format="classification", text=f"  {original.upper()}!! ", label="sport"),
        Record(id="near", format="classification", text=original.replace("The", "A", 1), label="sport"),
        Record(id="conflict", format="classification", text=tech[5], label="sport"),
    ]
    result = run_audit(records)
    found = codes(result, "duplicates")
    assert set(found["exact-duplicates"]) == {"sport-3", "exact"}
    assert set(found["near-duplicates"]) == {"sport-3", "near"}
    assert set(found["conflicting-duplicates"]) == {"tech-5", "conflict"}
    counts = result.checks["duplicates"]["within_train"]["counts"]
    assert counts == {"exact_groups": 1, "near_groups": 1, "conflicting_groups": 1}


def test_planted_train_eval_leak_is_an_error_naming_both_records(run_audit):
    sport, tech = sentences("sport", 40), sentences("tech", 40)
    train = classification({"sport": sport[:30], "tech": tech[:30]})
    evals = classification({"sport": sport[30:], "tech": tech[30:]}, prefix="eval-")
    evals.append(Record(id="leak", format="classification", text=tech[7].replace("The", "A", 1), label="tech"))
    result = run_audit(train, evals)
    leak = next(f for f in result.findings if f.code == "train-eval-overlap")
    assert leak.severity == "error" and leak.ids == ["leak"]
    [entry] = result.checks["duplicates"]["train_eval"]["leaks"]
    assert entry["train"] == "tech-7" and "near duplicate" in entry["how"]


def test_no_duplicates_no_findings(run_audit):
    result = run_audit(
        classification({"sport": sentences("sport", 20), "tech": sentences("tech", 20)}),
        classification({"tech": sentences("tech", 5, start=20)}, prefix="eval-"),
    )
    assert not codes(result, "duplicates")
