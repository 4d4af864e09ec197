import krippendorff
import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.inter_rater import cohens_kappa

from deftune.data.records import Record

from .crafted import codes, sentences

CATEGORIES = ["neg", "neutral", "pos"]


def annotated(rows: list[list[str | None]], labels: list[str] | None = None) -> list[Record]:
    labels = labels or [next(a for a in row if a) for row in rows]
    return [
        Record(id=f"u{i}", format="classification", text=text, label=label, annotations=row)
        for i, (text, label, row) in enumerate(zip(sentences("sport", len(rows)), labels, rows))
    ]


def random_rows(units: int = 60, raters: int = 4, missing: float = 0.2, seed: int = 1) -> list[list[str | None]]:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 3, units)
    rows = []
    for u in range(units):
        row = [CATEGORIES[truth[u] if rng.random() < 0.7 else rng.integers(0, 3)] for _ in range(raters)]
        rows.append([None if rng.random() < missing and r else a for r, a in enumerate(row)])  # rater 0 always
    return rows


def test_kappas_and_alpha_equal_the_reference_libraries(run_audit):
    rows = random_rows()
    data = run_audit(annotated(rows)).checks["agreement"]
    codes_ = np.array([[np.nan if a is None else CATEGORIES.index(a) for a in row] for row in rows])
    expected_alpha = krippendorff.alpha(reliability_data=codes_.T, level_of_measurement="nominal")
    assert data["krippendorff_alpha"] == {"alpha": pytest.approx(expected_alpha, abs=1e-6), "level": "nominal"}
    assert len(data["cohen_kappa"]) == 6  # every pair of the four annotators
    for pair in data["cohen_kappa"]:
        a, b = (codes_[:, r] for r in pair["annotators"])
        both = ~np.isnan(a) & ~np.isnan(b)
        table = pd.crosstab(a[both], b[both]).reindex(index=range(3), columns=range(3), fill_value=0)
        assert pair["records"] == both.sum()
        assert pair["kappa"] == pytest.approx(cohens_kappa(table.to_numpy()).kappa, abs=1e-6)


# Fleiss (1971) as worked on Wikipedia's "Fleiss' kappa" page: 10 subjects, 14 raters, 5 categories, kappa 0.20993.
FLEISS_TABLE = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def test_fleiss_kappa_reproduces_the_published_example(run_audit):
    rows = [[str(c) for c, n in enumerate(counts) for _ in range(n)] for counts in FLEISS_TABLE]
    data = run_audit(annotated(rows)).checks["agreement"]
    assert data["fleiss_kappa"]["records"] == 10
    assert data["fleiss_kappa"]["kappa"] == pytest.approx(0.20993, abs=5e-6)
    reliability = np.array([[int(a) for a in row] for row in rows], dtype=float).T
    assert data["krippendorff_alpha"]["alpha"] == pytest.approx(
        krippendorff.alpha(reliability_data=reliability, level_of_measurement="nominal"), abs=1e-6
    )


def test_raters_who_disagree_on_one_class_are_flagged_with_the_disputed_records(run_audit):
    rows = [[c, c, c] for c in ["neg", "pos"] * 20]
    neutral = [["neutral", "neg", "pos"], ["neutral", "neutral", "neg"], ["pos", "neutral", "neg"]] * 4
    result = run_audit(annotated(rows + neutral))
    found = codes(result, "agreement")
    disputed_ids = {f"u{i}" for i in range(40, 52)}
    assert set(found["class-disagreement"]) == disputed_ids  # only 'neutral' is disputed
    message = next(f.message for f in result.findings if f.code == "class-disagreement")
    assert "'neutral'" in message
    per_class = result.checks["agreement"]["per_class_agreement"]
    assert per_class["neutral"] < 0.6 < per_class["pos"]
    assert {d["id"] for d in result.checks["agreement"]["most_disputed"]} == disputed_ids


def test_labels_that_differ_from_the_annotators_majority(run_audit):
    rows = [["pos", "pos", "neg"], ["neg", "neg", "neg"], ["pos", "neg", None]]
    result = run_audit(annotated(rows, labels=["neg", "neg", "pos"]))
    assert codes(result)["label-vs-annotators"] == ["u0"]  # u2 has no majority


def test_records_without_annotations_skip_agreement(run_audit):
    records = annotated([["pos"], ["neg"]])
    for record in records:
        record.annotations = None
    result = run_audit(records)
    assert result.checks["agreement"] == {"annotated": 0}
    assert not codes(result, "agreement")
