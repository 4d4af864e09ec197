import numpy as np
import pytest
import torch

from deftune.core import inference
from deftune.core.inference import (
    DecodingSettings,
    generate,
    generate_detailed,
    parse_label,
)
from deftune.data import Renderer
from deftune.data.records import Record
from deftune.evaluate import labels


def _direct(model, tokenizer, prompt, option):
    """The option's log-likelihood from one unpadded forward pass over prompt + option."""
    p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    o = tokenizer(option, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logp = model(torch.tensor([p + o])).logits[0].float().log_softmax(-1)
    return sum(logp[len(p) - 1 + j, t].item() for j, t in enumerate(o))


def test_option_scores_equal_unbatched_full_sequence_scoring(tiny):
    model, tokenizer = tiny
    prompts = [
        "Question: what colour is the sky?\nAnswer:",
        "Hi",
        "A much longer prompt that needs left padding when it shares a batch with the short ones above.",
    ]
    options = [[" blue", " green and yellow"], [" there", " you", " everyone here today"], [" yes"]]
    got = inference.option_scores(model, tokenizer, prompts, options, batch_size=3)
    for prompt, opts, scores in zip(prompts, options, got):
        assert [s.logprob for s in scores] == pytest.approx(
            [_direct(model, tokenizer, prompt, o) for o in opts], abs=1e-3
        )
        assert [s.chars for s in scores] == [len(o) for o in opts]


def test_label_probabilities_are_a_distribution_over_the_label_set(tiny):
    model, tokenizer = tiny
    renderer = Renderer(tokenizer, labels=["sport", "tech", "business"], instruction="Label: {labels}\n{text}")
    records = [
        Record(id=str(i), format="classification", text=t, label="sport")
        for i, t in enumerate(["A late goal", "A new chip ships with the phone"])
    ]
    probs = labels.label_probabilities(model, tokenizer, renderer, records)
    assert probs.shape == (2, 3) and np.allclose(probs.sum(axis=1), 1)
    assert labels.answer_text(renderer, records[0], "tech") == "tech" + tokenizer.eos_token


def test_token_losses_count_every_token_after_the_first(tiny):
    model, tokenizer = tiny
    texts = ["one two three four five", "six"]
    rows = inference.token_losses(model, tokenizer, texts, max_tokens=3, batch_size=2)
    assert rows[:, 1].tolist() == [2, 0] and rows[0, 0] > 0 and rows[1, 0] == 0


def test_batched_generation_matches_one_at_a_time(tiny):
    model, tokenizer = tiny
    prompts = ["The sky is", "Once upon a time, in a land far away, there", "Hello"]
    settings = DecodingSettings(max_new_tokens=5, batch_size=3)
    batched = generate_detailed(model, tokenizer, prompts, settings)
    single = [generate(model, tokenizer, [p], settings)[0] for p in prompts]
    assert [g.text for g in batched] == single
    assert all(1 <= g.tokens <= 5 and (g.finished or g.tokens == 5) for g in batched)


def test_generate_and_score_share_one_prompt_pass_with_identical_results(tiny):
    model, tokenizer = tiny
    prompts = ["The sky is", "Once upon a time, in a land far away, there", "Hello"]
    options = [[" blue", " very green"], [" was", " lived a king"], [" world"]]
    settings = DecodingSettings(max_new_tokens=4, batch_size=3)
    generations, scores = inference.generate_and_score(model, tokenizer, prompts, options, settings)
    assert generations == generate_detailed(model, tokenizer, prompts, settings)
    expected = inference.option_scores(model, tokenizer, prompts, options, batch_size=2)
    for got, want in zip(scores, expected):
        assert [s.logprob for s in got] == pytest.approx([s.logprob for s in want], abs=1e-3)


@pytest.mark.parametrize(
    "answer, label",
    [
        ("sport", "sport"),
        (" Sport. ", "sport"),
        ("The category is tech.", "tech"),
        ("sport or tech", None),
        ("cooking", None),
        ("", None),
        ("business news", "business news"),
        ("sports", None),
    ],
)
def test_parse_label_against_the_label_set(answer, label):
    assert parse_label(answer, ["sport", "tech", "business news"]) == label
