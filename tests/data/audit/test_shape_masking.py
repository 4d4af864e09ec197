from deftune.data.records import Record
from deftune.data.render import Renderer

from .crafted import classification, codes, sentences

FRENCH = [
    "Le gouvernement a annoncé une nouvelle réforme des retraites après plusieurs semaines de débats.",
    "Les habitants du village se sont réunis sur la place pour fêter la fin des vendanges.",
    "La bibliothèque municipale restera fermée pendant les travaux de rénovation cet été.",
]
GERMAN = [
    "Die Regierung hat heute einen neuen Plan für den Ausbau der Eisenbahn vorgestellt.",
    "Am Wochenende findet in der Altstadt ein großes Fest mit Musik und Essen statt.",
]


def test_token_lengths_add_up_and_long_records_are_counted(run_audit, tokenizer):
    records = classification({"sport": sentences("sport", 20), "tech": sentences("tech", 20)})
    records[0].text = " ".join(sentences("sport", 8, start=20))  # far longer than the others
    renderer = Renderer(tokenizer, labels=["sport", "tech"], max_input_tokens=512, max_length=150)
    result = run_audit(records, renderer=renderer)
    shape = result.checks["shape"]
    answers = [len(tokenizer(label, add_special_tokens=False)["input_ids"]) + 1 for label in ("sport", "tech")]
    assert (shape["tokens"]["response"]["min"], shape["tokens"]["response"]["max"]) == (min(answers), max(answers))
    assert shape["tokens"]["total"]["unit"] == "tokens"
    assert codes(result, "shape")["over-max-length"] == ["sport-0"]
    total = renderer.render(records[0])
    assert shape["over_max_length"]["tokens_cut"] == len(total) - 150
    assert shape["over_max_length"]["answers_lost"] == 1  # the answer comes last: cutting loses it all


def test_classification_texts_cut_by_max_input_tokens(run_audit, tokenizer):
    records = classification({"sport": sentences("sport", 6)})
    renderer = Renderer(tokenizer, labels=["sport"], max_input_tokens=20, max_length=256)
    result = run_audit(records, renderer=renderer)
    assert len(codes(result)["input-truncated"]) == 6
    assert result.checks["shape"]["input_cut"]["records"] == 6


def test_empty_answers_and_prompts(run_audit):
    records = [
        Record(id=f"c{i}", format="completion", prompt=p, completion="A full answer here.")
        for i, p in enumerate(sentences("tech", 6))
    ]
    records[1].completion, records[2].completion, records[3].prompt = "", "  \n ", " "
    result = run_audit(records)
    empty = next(f for f in result.findings if f.code == "empty-responses")
    assert empty.severity == "error" and empty.ids == ["c1", "c2"]
    assert codes(result)["empty-prompts"] == ["c3"]


def test_label_imbalance_names_the_rare_label(run_audit):
    result = run_audit(classification({"sport": sentences("sport", 30), "tech": sentences("tech", 2)}))
    assert codes(result)["label-imbalance"] == ["tech-0", "tech-1"]
    assert result.checks["shape"]["labels"]["imbalance_ratio"] == 15


def test_language_mix(run_audit):
    texts = {"sport": sentences("sport", 20), "other": FRENCH + GERMAN}
    result = run_audit(classification(texts))
    mix = next(f for f in result.findings if f.code == "language-mix")
    assert mix.severity == "warning" and set(mix.ids) == {f"other-{i}" for i in range(5)}
    assert result.checks["shape"]["languages"]["counts"] == {"en": 20, "fr": 3, "de": 2}


class MaskingBug(Renderer):
    """Masks the whole answer of the record with id 'zero', as a broken template would."""

    def segments(self, record):
        segments = super().segments(record)
        return [(text, False) for text, _ in segments] if record.id == "zero" else segments


def test_masking_problems_are_aggregated_not_raised(run_audit, tokenizer):
    records = [
        Record(id=i, format="completion", prompt=f"Question {i}?", completion=f"Answer {i}.")
        for i in ("a", "b", "zero")
    ]
    result = run_audit(records, renderer=MaskingBug(tokenizer))
    zero = next(f for f in result.findings if f.code == "zero-trained")
    assert zero.severity == "error" and zero.ids == ["zero"]
    masking = result.checks["masking"]
    assert (masking["passed"], masking["failed"]) == (2, 1)
    assert 0 < masking["trained_share"] < 0.5


def test_chat_records_without_a_chat_template_fail_the_self_check(run_audit, tokenizer):
    renderer = Renderer(tokenizer)
    renderer.has_template = False
    records = [
        Record(
            id=f"m{i}",
            format="chat",
            messages=[{"role": "user", "content": f"Hi {i}"}, {"role": "assistant", "content": "Hello."}],
        )
        for i in range(3)
    ]
    result = run_audit(records, renderer=renderer)
    problem = next(f for f in result.findings if f.code == "masking-error")
    assert problem.ids == ["m0", "m1", "m2"] and "chat template" in problem.message
