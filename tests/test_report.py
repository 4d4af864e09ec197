"""The report's verdict and page from crafted artifacts (the whole page on a real run: tests/test_pipeline.py)."""

import json

import pytest

from deftune.core.artifacts import EvalArtifact, Interval
from deftune.errors import RunError
from deftune.report import build
from deftune.report.html import Artifacts, interval, verdict


def _iv(value, low, high, unit="share"):
    return {"value": value, "low": low, "high": high, "unit": unit, "n": 100, "confidence": 0.95}


def _eval(diff, p, drop_low) -> EvalArtifact:
    """An eval.json with the task metric and pooled retention the verdict weighs; the rest empty."""
    metric = {
        "base": {"generated": {"macro_f1": _iv(0.3, 0.2, 0.4)}},
        "tuned": {"generated": {"macro_f1": _iv(0.3 + diff, 0.2 + diff, 0.4 + diff)}},
    }
    return EvalArtifact.model_validate(
        {
            "target": "run",
            "task": "classification",
            "examples": 100,
            "data": "test split",
            "systems": {"base": {"model": "base"}, "tuned": {"model": "run/train/adapter"}},
            "decoding": {
                "max_new_tokens": 16,
                "do_sample": False,
                "temperature": 1.0,
                "top_p": 1.0,
                "batch_size": 16,
                "seed": 1,
            },
            "precision": {
                "name": "fp32",
                "requested": "fp32",
                "device": "cpu",
                "native": True,
                "reason": "as configured",
            },
            "statistics": {"resamples": 100, "confidence": 0.95, "seed": 1, "interval": "", "paired_test": ""},
            "signatures": {},
            "metrics": metric,
            "comparison": {
                "generated": {
                    "macro_f1": {
                        "difference": diff,
                        "low": diff - 0.05,
                        "high": diff + 0.05,
                        "p_value": p,
                        "unit": "share",
                        "n": 100,
                        "confidence": 0.95,
                        "test": "paired approximate randomisation",
                        "trials": 100,
                    }
                }
            },
            "per_class": None,
            "errors": {},
            "slices": {},
            "stress": None,
            "retention": {
                "metrics": {
                    "all": {
                        "base": _iv(0.5, 0.45, 0.55),
                        "tuned": _iv(0.47, 0.42, 0.52),
                        "drop": _iv(0.03, drop_low, 0.06, "points"),
                        "relative_drop": _iv(0.06, 0.0, 0.1),
                        "p_value": 0.04,
                    }
                },
                "sources": {},
            },
            "review": {"files": [], "labels": []},
            "seconds": 1.0,
        }
    )


def test_verdict_weighs_task_gain_against_forgetting(tmp_path):
    good = verdict(Artifacts(tmp_path, eval=_eval(0.5, 0.001, -0.01)))
    assert good[0] == "good" and [k for k, _ in good[1]] == ["pass", "pass"]
    forgot = verdict(Artifacts(tmp_path, eval=_eval(0.5, 0.001, 0.01)))
    assert forgot[0] == "mixed" and "significantly forgotten" in forgot[1][1][1]
    useless = verdict(Artifacts(tmp_path, eval=_eval(0.01, 0.4, 0.01)))
    assert useless[0] == "bad" and "no significant improvement" in useless[1][0][1]


def test_intervals_print_shares_in_percent():
    assert interval(Interval(**_iv(0.945, 0.923, 0.966))) == "94.5 [92.3, 96.6]"
    assert interval(Interval(**_iv(31.15, 27.97, 34.92, "perplexity"))) == "31.15 [27.97, 34.92]"
    assert interval(None) == "–"


def test_a_partial_run_still_gets_a_page(tmp_path):
    (tmp_path / "config.yaml").write_text("run:\n  seed: 1\n")
    (tmp_path / "evaluate").mkdir()
    _eval(0.5, 0.001, -0.01).write(tmp_path / "evaluate" / "eval.json")
    page = build(tmp_path).read_text()
    assert "The fine-tune improves the task without measured losses" in page
    assert "No training artifacts in this run." in page and "<pre>run:\n  seed: 1\n</pre>" in page
    with pytest.raises(RunError, match="not a deftune run folder"):
        build(tmp_path / "evaluate")


def test_balanced_data_and_the_adversary_are_reported(tmp_path):
    (tmp_path / "config.yaml").write_text("run:\n  seed: 1\n")
    for folder, name, found in (
        (
            "data",
            "balance.json",
            {
                "attribute": "gender",
                "method": "reweight",
                "counterfactual": False,
                "records": 8,
                "records_after": 8,
                "with_group": 8,
                "cells_before": {"female|sport": 3, "female|tech": 1},
                "cells_after": {"female|sport": 2.0, "female|tech": 2.0},
            },
        ),
        (
            "train",
            "adversary.json",
            {
                "weight": 1.0,
                "pooling": "answer",
                "final_accuracy": 0.55,
                "chance_accuracy": 0.5,
                "probe": {
                    "rows": 120,
                    "on": "validation",
                    "tuned_accuracy": 0.61,
                    "base_accuracy": 0.93,
                    "chance_accuracy": 0.52,
                },
            },
        ),
    ):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / name).write_text(json.dumps(found))
    page = build(tmp_path).read_text()
    assert (
        "Balanced training data (gender)" in page
        and "<td>female|tech</td><td class=n>1</td><td class=n>2.00</td>" in page
    )
    assert "55.0% vs 50.0%" in page and "held-out probe on 120 validation rows" in page
    assert "61.0% / 93.0% / 52.0%" in page
