import json

import pytest
from typer.testing import CliRunner

from deftune import config, data
from deftune.cli import app
from deftune.core.precision import choose as choose_precision
from deftune.errors import ModelError, RunError
from deftune.evaluate import evaluate
from deftune.train.recipe import train
from tests.helpers import TOPICS, write_jsonl

FAST = [
    "evaluation.resamples=100",
    "evaluation.max_new_tokens=4",
    "evaluation.stress_examples=4",
    "evaluation.foreign_examples=3",
    "evaluation.ambiguous_examples=4",
    "evaluation.retention_questions=2",
    "evaluation.perplexity_documents=2",
    "evaluation.perplexity_max_tokens=16",
    "evaluation.review_sample=3",
    "evaluation.retention_benchmarks=[piqa,siqa]",
    "data.max_input_tokens=12",
]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_model):
    """A LoRA run of the tiny model on two topics; its test file holds a source never seen in training."""
    root = tmp_path_factory.mktemp("evaluate")
    rows = [
        {"id": f"{label}-{i}", "text": text, "label": label, "meta": {"source": "wire" if i % 2 else "web"}}
        for label, texts in TOPICS.items()
        for i, text in enumerate(texts)
    ]
    test = [
        {**row, "id": f"t-{row['id']}", "meta": {"source": "radio" if i < 3 else row["meta"]["source"]}}
        for i, row in enumerate(rows)
    ]
    cfg = config.load(
        None,
        [
            f"model.spec={tiny_model}",
            f"data.path={write_jsonl(root / 'train.jsonl', rows)}",
            f"data.test_path={write_jsonl(root / 'test.jsonl', test)}",
            f"run.root={root}",
            "run.name=r",
            "training.max_steps=2",
            "training.batch_size=4",
            *FAST,
        ],
    )
    train(cfg, quiet=True)
    return root / "r"


def test_run_evaluation_writes_the_full_report(tiny_run):
    result = evaluate(str(tiny_run))
    out = tiny_run / "evaluate"
    report = json.loads((out / "eval.json").read_text())
    assert result.systems == ["base", "tuned"] and result.task == "classification" and result.examples == 8
    for name in ("base", "tuned"):
        acc = report["metrics"][name]["generated"]["accuracy"]
        assert acc["n"] == 8 and acc["unit"] == "share" and acc["confidence"] == 0.95
        assert set(report["metrics"][name]["likelihood"]) == {"accuracy", "macro_f1", "micro_f1", "ece"}
    assert 0 < report["comparison"]["likelihood"]["accuracy"]["p_value"] <= 1
    assert report["decoding"]["max_new_tokens"] == 4 and report["decoding"]["do_sample"] is False
    assert report["precision"] == choose_precision("auto").to_json()  # model.precision: auto, as training
    assert report["per_class"]["tuned"]["confusion_matrix"]["predicted"][-1] == "(invalid)"
    assert {s["field"] for s in report["slices"]["tuned"]} == {"meta.source", "audit.topic", "input_length"}
    assert report["errors"]["tuned"]["examples"] == 8

    stress = report["stress"]
    assert set(stress["invariance"]["tuned"]["perturbations"]) <= {
        "typo",
        "casing",
        "punctuation",
        "whitespace",
        "synonym",
        "paraphrase",
    }
    assert stress["invariance"]["tuned"]["perturbations"]["casing"]["variants"] == 4
    assert stress["held_out"]["tuned"]["held_out_values"] == ["radio"]
    assert stress["foreign"]["base"]["n"] == 3 and stress["ambiguity"]["tuned"]["expectation"] == "spread"
    assert report["retention"]["metrics"]["all"]["base"]["n"] == 4
    assert "relative_drop" in report["retention"]["metrics"]["xsum"]

    lines = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(lines) == 8 and set(lines[0]) == {"id", "slices", "base", "tuned"}
    assert abs(sum(lines[0]["tuned"]["probabilities"].values()) - 1) < 1e-3
    assert (out / "review.csv").is_file() and (out / "candidates.jsonl").is_file()
    if stress["candidates"]["records"]:  # the candidates load back as records of the input's schema
        assert data.load(str(out / "candidates.jsonl")).format == "classification"

    with pytest.raises(RunError, match="already holds results"):
        evaluate(str(tiny_run))


def test_a_model_spec_is_evaluated_alone_on_generation_data(tmp_path, tiny_model):
    rows = [{"id": str(i), "prompt": f"Say {w}", "completion": w} for i, w in enumerate(["yes", "no", "maybe"])]
    path = write_jsonl(tmp_path / "gen.jsonl", rows)
    cfg = config.load(
        None,
        [
            f"run.root={tmp_path}",
            "run.name=m",
            "evaluation.retention_benchmarks=[]",
            "evaluation.perplexity_documents=0",
            *FAST,
        ],
    )
    result = evaluate(str(tiny_model), data_path=str(path), cfg=cfg)
    report = json.loads((tmp_path / "m" / "evaluate" / "eval.json").read_text())
    assert result.systems == ["model"] and result.task == "generation" and result.comparison is None
    assert set(report["metrics"]["model"]["generated"]) == {"bleu", "chrf", "ter", "rouge_l", "exact_match", "token_f1"}
    assert report["signatures"]["bleu"].startswith("nrefs:1") and report["stress"] is None


def test_command_user_errors_and_review_import(tmp_path, tiny_run):
    result = CliRunner().invoke(app, ["evaluate", "./no/such/model", "--quiet"])
    assert isinstance(result.exception, ModelError)
    review = tiny_run / "evaluate" / "review.jsonl"
    rows = [json.loads(line) for line in review.read_text().splitlines()]
    filled = write_jsonl(tmp_path / "ann.jsonl", [{**r, "reviewer": "ann", "label": "wrong_label"} for r in rows])
    result = CliRunner().invoke(app, ["evaluate", str(tiny_run), "--review", str(filled), "--quiet"])
    assert result.exit_code == 0, result.output
    imported = json.loads((tiny_run / "evaluate" / "review_import.json").read_text())
    assert imported["reviewers"] == ["ann"] and imported["examples"] == len(rows)


def test_a_topic_held_out_of_training_is_the_out_of_distribution_slice(tmp_path):
    from types import SimpleNamespace

    from deftune.evaluate.runner import _held_out_values

    rows = [
        {"id": f"{label}-{i}", "text": text, "label": label, "meta": {"source": "wire" if i < 2 else "web"}}
        for label, texts in TOPICS.items()
        for i, text in enumerate(texts)
    ]
    cfg = config.load(
        None,
        [
            f"data.path={write_jsonl(tmp_path / 'd.jsonl', rows)}",
            "data.split.test=0.25",
            "data.split.hold_out=source=wire",
        ],
    )
    splits = data.load_splits(cfg.data, cfg.run.seed)
    target = SimpleNamespace(cfg=cfg, train=splits["train"].records)
    test = splits["test"].records
    field, values, train_values = _held_out_values(target, test, ["source"], None)
    assert field == "split.hold_out (source=wire)" and set(train_values) == {"seen"}
    assert [v == "held out" for v in values] == [r.meta["source"] == "wire" for r in test]
