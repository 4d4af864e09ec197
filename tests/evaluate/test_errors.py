import json

import pytest

from deftune.config import AuditConfig
from deftune.data.records import Record
from deftune.errors import DataError
from deftune.evaluate import errors, slices
from deftune.evaluate.errors import Prediction


def _p(answer, *, ref="sport", label=None, score=0.0, finished=True, truncated=False, id="x"):
    return Prediction(
        id=id,
        reference=ref,
        answer=answer,
        tokens=len(answer.split()),
        finished=finished,
        input_tokens=10,
        input_truncated=truncated,
        score=score,
        label=label,
    )


@pytest.mark.parametrize(
    "prediction, classification, expected",
    [
        (_p("tech", label="tech"), True, ["wrong_label"]),
        (_p("cooking"), True, ["invalid_format"]),
        (_p("I think it is about cooking"), True, ["invalid_format", "over_long"]),
        (_p(""), True, ["empty"]),
        (_p("tech tech tech tech", label="tech"), True, ["wrong_label", "repetition", "over_long"]),
        (_p("I'm sorry, I cannot help with that."), True, ["invalid_format", "refusal", "over_long"]),
        (_p("tech", label="tech", finished=False), True, ["wrong_label", "over_long"]),
        (_p("tech", label="tech", truncated=True), True, ["wrong_label", "truncated_input"]),
        (_p("the answer is blue", ref="the sky is red at dusk"), False, ["low_overlap"]),
        (_p("sport", label="sport", score=1.0), True, []),
    ],
)
def test_error_categories_fire_on_crafted_outputs(prediction, classification, expected):
    assert errors.categorize(prediction, classification=classification, overlong_ratio=3) == expected


def test_repetition_detects_loops_but_not_normal_text():
    assert errors.repetitive("the the the the end")
    assert errors.repetitive("a b c a b c a b c a b c")
    assert not errors.repetitive("The striker signed for a rival club after the final")


def test_summary_counts_categories_and_confusion_pairs():
    preds = [
        _p("tech", label="tech", id="1"),
        _p("tech", label="tech", id="2"),
        _p("", id="3"),
        _p("sport", label="sport", score=1, id="4"),
    ]
    for p in preds:
        p.categories = errors.categorize(p, classification=True, overlong_ratio=3)
    summary = errors.summarize(preds)
    assert summary["errors"] == 3 and summary["categories"]["wrong_label"] == {"count": 2, "ids": ["1", "2"]}
    assert summary["confusion_pairs"] == [{"pair": "sport → tech", "count": 2, "ids": ["1", "2"]}]


def test_review_export_and_import_with_reviewer_agreement(tmp_path):
    preds = [_p("tech", label="tech", id=str(i)) for i in range(6)] + [_p("sport", label="sport", score=1, id="ok")]
    for p in preds:
        p.categories = errors.categorize(p, classification=True, overlong_ratio=3)
    files = errors.export_review(preds, {p.id: f"text {p.id}" for p in preds}, tmp_path, n=4, seed=0)
    rows = [json.loads(line) for line in (tmp_path / "review.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and "ok" not in {r["id"] for r in rows} and files[0].endswith("review.csv")

    a = tmp_path / "alice.jsonl"
    b = tmp_path / "bob.jsonl"
    a.write_text("".join(json.dumps({**r, "label": "wrong_label"}) + "\n" for r in rows))
    b.write_text(
        "".join(json.dumps({**r, "label": "wrong_label" if i < 3 else "other"}) + "\n" for i, r in enumerate(rows))
    )
    result = errors.import_review([a, b])
    assert result["reviewers"] == ["alice", "bob"] and result["labels"] == {"wrong_label": 7, "other": 1}
    assert result["agreement_with_automatic"] == pytest.approx(7 / 8)
    assert result["between_reviewers"]["krippendorff_alpha"] < 1

    b.write_text(json.dumps({**rows[0], "label": "typo"}) + "\n")
    with pytest.raises(DataError, match=r"bob.jsonl:1:label: unknown review label 'typo'"):
        errors.import_review([b])


def test_slices_report_meta_fields_and_length_buckets_worst_first():
    records = [
        Record(
            id=str(i),
            format="classification",
            text="t",
            label="a",
            meta={"topic": "x" if i < 4 else "y", "uid": str(i)},
        )
        for i in range(8)
    ]
    preds = [
        _p("a", ref="a", label="a", score=1, id=str(i)) if i >= 4 else _p("b", ref="a", label="b", id=str(i))
        for i in range(8)
    ]
    for p in preds:
        p.categories = errors.categorize(p, classification=True, overlong_ratio=3)
    assert slices.meta_fields(records, None) == ["topic", "uid"]  # 8 distinct uids: still few enough
    assert slices.length_buckets([10, 20, 30, 40], 2) == [
        "10-25 tokens",
        "10-25 tokens",
        "26-40 tokens",
        "26-40 tokens",
    ]
    table = slices.assign(records, [10, 20, 30, 40, 50, 60, 70, 80], ["topic"], 2)
    found = slices.report(preds, table, resamples=100, confidence=0.95, seed=0)
    assert (found[0]["field"], found[0]["value"], found[0]["n"]) == ("meta.topic", "x", 4)
    assert found[0]["score"]["value"] == 0 and found[0]["errors"] == {"wrong_label": 4}
    assert found[0]["error_ids"] == ["0", "1", "2", "3"] and found[-1]["score"]["value"] == 1
    assert {s["value"] for s in found if s["field"] == "input_length"} == {"10-45 tokens", "46-80 tokens"}


def test_audit_topics_name_each_record_by_its_topic_keywords():
    sport = [
        "the striker scored a goal in the football match",
        "a late goal won the football cup match",
        "the football team won the match with a goal",
    ]
    tech = [
        "the new phone chip makes the computer faster",
        "a faster chip for the phone and the computer",
        "computer makers ship a phone chip",
    ]
    train = [Record(id=f"s{i}", format="classification", text=t, label="sport") for i, t in enumerate(sport)]
    train += [Record(id=f"t{i}", format="classification", text=t, label="tech") for i, t in enumerate(tech)]
    test = [
        Record(id="x", format="classification", text="goal in the football match", label="sport"),
        Record(id="y", format="classification", text="a phone chip", label="tech"),
    ]
    in_train, in_test = slices.audit_topics(train, test, AuditConfig(topics=2), seed=0)
    assert len(set(in_train[:3])) == 1 and len(set(in_train[3:])) == 1 and in_train[0] != in_train[3]
    assert in_test == [in_train[0], in_train[3]] and "football" in in_train[0] and "chip" in in_train[3]
    assert slices.audit_topics(train[:1], [], AuditConfig(), seed=0) is None  # one text: no two topics
    table = slices.assign(test, [5, 3], [], 1, in_test)
    assert table["audit.topic"] == in_test
