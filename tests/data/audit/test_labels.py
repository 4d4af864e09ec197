from .crafted import classification, codes, sentences


def test_cleanlab_finds_planted_label_flips(run_audit):
    records = classification({"sport": sentences("sport", 40), "tech": sentences("tech", 40)})
    flipped = {"sport-3", "sport-17", "sport-25", "tech-8", "tech-20", "tech-33"}
    for record in records:
        if record.id in flipped:
            record.label = "tech" if record.label == "sport" else "sport"
    result = run_audit(records, cleanlab=True)
    found = set(codes(result, "labels")["label-errors"])
    # Confident learning is conservative: a flip is caught when the classifier is at least as sure of the true
    # class as it is on average, so one of six may slip through; nothing else is accused.
    assert found <= flipped and len(found) >= 5
    data = result.checks["labels"]
    assert data["checked"] == 80 and data["out_of_sample_accuracy"] > 0.9
    for issue in data["likely_errors"]:
        assert issue["suggested"] == issue["id"].split("-")[0] != issue["label"]


def test_cleanlab_is_skipped_when_off_or_without_enough_labels(run_audit):
    records = classification({"sport": sentences("sport", 10), "tech": sentences("tech", 3)})
    assert run_audit(records).checks["labels"] == {"skipped": "data.audit.cleanlab is off"}
    skipped = run_audit(records, cleanlab=True).checks["labels"]["skipped"]
    assert skipped == "fewer than two labels with at least 5 records"
