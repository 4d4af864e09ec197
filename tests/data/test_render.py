import pytest

from deftune.data.records import Record
from deftune.data.render import IGNORE, Rendered, Renderer, check
from deftune.errors import DataError


def trained_text(tokenizer, rendered):
    return tokenizer.decode(
        [t for t, lab in zip(rendered.input_ids, rendered.labels) if lab != IGNORE], skip_special_tokens=False
    )


def masked_text(tokenizer, rendered):
    return tokenizer.decode(
        [t for t, lab in zip(rendered.input_ids, rendered.labels) if lab == IGNORE], skip_special_tokens=False
    )


def test_chat_trains_only_assistant_turns_with_eos(tokenizer):
    record = Record(
        id="1",
        format="chat",
        messages=[
            {"role": "system", "content": "You answer tersely."},
            {"role": "user", "content": "Capital of France?"},
            {"role": "assistant", "content": "Paris."},
            {"role": "user", "content": "And of Spain?"},
            {"role": "assistant", "content": "Madrid."},
        ],
    )
    rendered = Renderer(tokenizer).render(record)
    # The whole sequence is exactly the chat template's rendering.
    full = tokenizer.apply_chat_template(record.messages, tokenize=False)
    assert tokenizer.decode(rendered.input_ids, skip_special_tokens=False) == full
    assert trained_text(tokenizer, rendered) == "Paris.<|im_end|>Madrid.<|im_end|>"
    masked = masked_text(tokenizer, rendered)
    for prompt_part in ("You answer tersely.", "Capital of France?", "And of Spain?", "<|im_start|>assistant\n"):
        assert prompt_part in masked
    # Label positions equal their input ids (the model shifts internally), each turn ends with EOS.
    eos = tokenizer.eos_token_id
    trained_positions = [i for i, lab in enumerate(rendered.labels) if lab != IGNORE]
    assert all(rendered.labels[i] == rendered.input_ids[i] for i in trained_positions)
    assert sum(rendered.input_ids[i] == eos for i in trained_positions) == 2


def test_prompt_tokens_match_the_inference_prompt(tokenizer):
    record = Record(id="1", format="completion", prompt="Say hi", completion="hi")
    renderer = Renderer(tokenizer)
    rendered = renderer.render(record)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Say hi"}], tokenize=False, add_generation_prompt=True
    )
    assert renderer.prompt_text(record) == prompt
    n_prompt = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    assert rendered.input_ids[:n_prompt] == tokenizer(prompt, add_special_tokens=False)["input_ids"]
    assert all(lab == IGNORE for lab in rendered.labels[:n_prompt])
    assert rendered.labels[n_prompt] != IGNORE


def test_classification_prompt_carries_label_set_and_truncates_text(tokenizer):
    renderer = Renderer(
        tokenizer, labels=["business", "sport"], instruction="Pick one of: {labels}\n{text}", max_input_tokens=5
    )
    record = Record(
        id="1", format="classification", text="one two three four five six seven eight nine ten", label="sport"
    )
    rendered = renderer.render(record)
    prompt = renderer.classification_prompt(record)
    assert prompt.startswith("Pick one of: business, sport\n")
    assert "ten" not in prompt and prompt.endswith("…")
    assert trained_text(tokenizer, rendered) == "sport<|im_end|>"


def test_text_records_are_trained_whole_with_eos(tokenizer):
    rendered = Renderer(tokenizer).render(Record(id="1", format="text", text="Some plain text."))
    assert all(lab != IGNORE for lab in rendered.labels)
    assert rendered.input_ids[-1] == tokenizer.eos_token_id


def test_without_chat_template_prompt_is_masked_and_eos_appended(tokenizer):
    import copy

    base = copy.deepcopy(tokenizer)
    base.chat_template = None
    renderer = Renderer(base)
    rendered = renderer.render(Record(id="1", format="completion", prompt="Q: 2+2?\nA:", completion=" 4"))
    assert trained_text(base, rendered) == " 4<|im_end|>"
    assert masked_text(base, rendered) == "Q: 2+2?\nA:"
    with pytest.raises(DataError, match="chat template"):
        renderer.render(Record(id="2", format="chat", messages=[{"role": "assistant", "content": "x"}]))


def test_overlong_examples_are_dropped_and_counted(tokenizer):
    renderer = Renderer(tokenizer, max_length=40)
    short = Record(id="s", format="text", text="short")
    long = Record(id="l", format="text", text="word " * 100)
    rendered, stats = renderer.render_all([short, long])
    assert [r.id for r in rendered] == ["s"] and stats.too_long == ["l"]
    with pytest.raises(DataError, match="max_length"):
        renderer.render_all([long])


def _rendered(tokenizer, prompt, answer, labels_for):
    ids_p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    ids_a = tokenizer(answer, add_special_tokens=False)["input_ids"]
    return Rendered("x", ids_p + ids_a, labels_for(ids_p, ids_a), [(prompt, False), (answer, True)])


def test_self_check_catches_zero_trained_tokens(tokenizer):
    bad = _rendered(tokenizer, "Q?", "A<|im_end|>", lambda p, a: [IGNORE] * (len(p) + len(a)))
    with pytest.raises(DataError, match="zero tokens"):
        check(bad, tokenizer)


def test_self_check_catches_trained_prompt(tokenizer):
    bad = _rendered(tokenizer, "Q?", "A<|im_end|>", lambda p, a: p + a)
    with pytest.raises(DataError, match="do not match the answer"):
        check(bad, tokenizer)


def test_self_check_catches_missing_eos(tokenizer):
    bad = _rendered(tokenizer, "Q?", "A", lambda p, a: [IGNORE] * len(p) + a)
    with pytest.raises(DataError, match="EOS"):
        check(bad, tokenizer)


def test_self_check_passes_a_correct_example(tokenizer):
    good = _rendered(tokenizer, "Q?", "A<|im_end|>", lambda p, a: [IGNORE] * len(p) + a)
    check(good, tokenizer)  # raises on any problem
    assert good.n_trained == 2
