import pytest

from deftune.config import SafetyConfig
from deftune.safety import Guard
from deftune.safety import guard as guard_mod


@pytest.mark.parametrize(
    "text, refused",
    [
        ("I'm sorry, but I can't help with that.", True),
        ("I cannot assist with this request.", True),
        ("As an AI, I do not have opinions.", True),
        ("I won’t do that.", True),
        ("Paris is the capital of France.", False),
        ("The sorry state of the roads.", False),
        ("I can help: first, preheat the oven.", False),
    ],
)
def test_refusal_detection(text, refused):
    assert guard_mod.is_refusal(text) is refused


def test_configured_refusal_message_counts():
    assert guard_mod.is_refusal("Nope.", "Nope.") and not guard_mod.is_refusal("Nope.")


def test_guard_blocks_input_redacts_and_screens_output(tiny, monkeypatch):
    model, tokenizer = tiny
    seen = []

    def fake_generate(model_, tokenizer_, prompts, settings):
        seen.extend(prompts)
        return ["Sure, my email is me@example.com.", "You stupid idiot."][: len(prompts)]

    monkeypatch.setattr(guard_mod, "generate", fake_generate)
    cfg = SafetyConfig(refusal="Not here.")
    results = Guard(model, tokenizer, cfg)(
        ["f*ck you", "my card is 4111 1111 1111 1111, is it safe?", "tell me something"]
    )
    blocked_in, redacted, blocked_out = results
    assert blocked_in.text == "Not here." and blocked_in.refused == "input" and blocked_in.output is None
    assert "[CARD]" in seen[0] and "4111" not in seen[0]  # the model never sees the card number
    assert redacted.refused is None and redacted.text == "Sure, my email is [EMAIL]."
    assert blocked_out.refused == "output" and blocked_out.text == "Not here."
    assert blocked_out.raw_answer == "You stupid idiot." and "insult" in blocked_out.output.categories


def test_guard_runs_the_real_model(tiny):
    model, tokenizer = tiny
    result = Guard(model, tokenizer, SafetyConfig(), guard_mod.DecodingSettings(max_new_tokens=4)).one("Hello!")
    assert result.input.flagged is False and result.raw_answer is not None
