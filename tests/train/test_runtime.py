"""The wall-time estimate said before a run: work counted from the configuration, seconds from measured speeds."""

import pytest

from deftune import config
from deftune.train import runtime

FLAT = runtime.Speeds(token_flops=1e6, head_flops=1e5, prefill=1e9, decode=1e8, train=1e9)


def test_evaluation_work_counts_prompts_options_and_decoding_steps():
    cfg = config.load(
        None,
        [
            "evaluation.max_examples=20",
            "evaluation.batch_size=8",
            "evaluation.max_new_tokens=4",
            "evaluation.stress=false",
            "evaluation.retention_benchmarks=[piqa]",
            "evaluation.retention_questions=10",
            "evaluation.perplexity_documents=0",
        ],
    )
    work = runtime.evaluation_work(cfg, test_examples=50, prompt_tokens=100, labels=5)
    context, option, k = runtime.RETENTION_ITEMS["piqa"]
    # 20 prompts of 100 tokens, 5 labels of 3 answer tokens each, 10 PIQA questions with their options
    assert work.prompt_tokens == 20 * 100 + 20 * 5 * 3 + 10 * (context + k * option)
    assert work.decode_steps == 3 * 4  # ceil(20 / 8) batches, up to 4 new tokens each
    assert FLAT.seconds(work) == pytest.approx(work.prompt_tokens * 1e6 / 1e9 + 12 * 8 * 1.1e6 / 1e8)


def test_safety_work_counts_bias_items_and_answers():
    cfg = config.load(
        None,
        [
            "safety.bias_benchmarks=[crows_pairs]",
            "safety.bias_examples=10",
            "safety.refusal_prompts=4",
            "safety.batch_size=4",
        ],
    )
    work = runtime.safety_work(cfg)
    prompt, option, k = runtime.BIAS_ITEMS["crows_pairs"]
    assert work.prompt_tokens == 10 * (prompt + k * option) + 8 * runtime.SAFETY_PROMPT_TOKENS
    assert work.decode_steps == 2 * runtime.SAFETY_ANSWER_TOKENS  # 8 prompts in batches of 4


def test_training_estimate_is_steps_times_step_time_and_respects_the_budget(tiny_model, monkeypatch):
    monkeypatch.setattr(runtime, "speeds", lambda *a: FLAT)
    lengths = [40] * 64
    cfg = config.load(None, [f"model.spec={tiny_model}", "training.max_tokens=160", "training.epochs=2"])
    found = runtime.estimate(
        cfg,
        train_lengths=lengths,
        validation_lengths=[],
        prompt_tokens=30,
        test_examples=0,
        labels=2,
        trained_per_row=2,
        stages=("train",),
    )
    assert found.training_steps == 2 * 16  # 4 examples of 40 tokens per micro-batch
    assert found.seconds["train"] == pytest.approx(found.training_steps * found.seconds_per_step, abs=0.05)
    budgeted = runtime.estimate(
        cfg.model_copy(update={"training": cfg.training.model_copy(update={"time_budget": "1s"})}),
        train_lengths=lengths,
        validation_lengths=[],
        prompt_tokens=30,
        test_examples=0,
        labels=2,
        trained_per_row=2,
        stages=("train",),
    )
    assert budgeted.seconds["train"] == pytest.approx(min(1.0, found.seconds["train"]))
    assert "training.time_budget" in budgeted.describe()
