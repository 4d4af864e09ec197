"""The augmentation pipeline: provenance, rejection reasons, caps, train/eval separation, the LLM path on the
tiny model, and the files written."""

import json
import logging

import pytest

from deftune import data
from deftune.data.augment import augment, augment_split, paraphrase, write
from deftune.data.augment.pipeline import Candidate, input_text, variant
from deftune.data.records import Dataset, Record
from tests.helpers import TOPICS, needs_apertium

from .stubs import StubLLM, StubTranslator, config

GOOD = {
    "The team won the match in extra time": "In extra time, the team won the match",
    "The new phone ships with a faster chip": "The new phone comes with a quicker chip",
    "Engineers released a patch for the browser": "A patch for the browser was released by engineers",
}
NEAR_COPY = {"A late goal settled the cup final": "A late goal settled the cup final."}
DRIFT = {"The striker signed for a rival club": "The bank raised interest rates"}


def records(topics=TOPICS) -> list[Record]:
    return [
        Record(id=f"{label}-{i}", format="classification", text=text, label=label, meta={"source": "crafted"})
        for label, texts in topics.items()
        for i, text in enumerate(texts)
    ]


def back_translation_only(**augment):
    return config(methods=["backtranslation"], **augment)


def test_accepted_variants_have_the_input_schema_and_provenance(embedder):
    stub = StubTranslator({**GOOD, **NEAR_COPY, **DRIFT})
    result = augment(records(), back_translation_only(), translator=stub, embedder=embedder)
    accepted = {r.meta["augmentation"]["source_id"]: r for r in result.accepted}
    assert set(accepted) == {"sport-0", "tech-0", "tech-1"}
    record = accepted["sport-0"]
    assert record.id == "sport-0~backtranslation-1" and record.text == GOOD["The team won the match in extra time"]
    assert record.label == "sport" and record.format == "classification" and record.meta["source"] == "crafted"
    provenance = record.meta["augmentation"]
    assert {k: provenance[k] for k in ("method", "engine", "prompt_version", "seed", "pivot")} == {
        "method": "backtranslation",
        "engine": "stub",
        "prompt_version": None,
        "seed": 42,
        "pivot": "spa",
    }
    assert provenance["checks"]["similarity"] > 0.8 and provenance["checks"]["label"] == "sport"


def test_rejected_variants_say_which_filters_failed(embedder):
    stub = StubTranslator({**GOOD, **NEAR_COPY, **DRIFT})
    result = augment(records(), back_translation_only(), translator=stub, embedder=embedder)
    reasons = {r["meta"]["augmentation"]["source_id"]: r["rejected"] for r in result.rejected}
    assert any(reason.startswith("novelty: 99.19") for reason in reasons["sport-1"])
    assert any(reason.startswith("similarity:") for reason in reasons["sport-2"])
    unchanged = reasons["sport-3"]  # the stub returns the text itself: a copy
    assert len(unchanged) == 1 and unchanged[0].startswith("novelty:")
    assert all(r["meta"]["augmentation"]["method"] == "backtranslation" for r in result.rejected)


def test_summary_reports_acceptance_per_method_and_filter(embedder):
    stub = StubTranslator({**GOOD, **NEAR_COPY, **DRIFT})
    summary = augment(records(), back_translation_only(), translator=stub, embedder=embedder).summary
    method = summary["methods"]["backtranslation"]
    assert method["candidates"] == 8 and method["accepted"] == 3 and method["acceptance_rate"] == 0.375
    assert method["filters"]["novelty"] == {
        "passed": 4,
        "checked": 8,
        "acceptance_rate": 0.5,  # + the drift
        "threshold": "chrF to the source at most 90.0 (higher: a near-copy)",
    }
    assert method["filters"]["similarity"]["passed"] == 7
    assert summary["skipped_filters"] == {"eval_overlap": "no evaluation records given"}
    assert summary["augmented_share"] == round(3 / 11, 4)


def test_caps_per_example_keep_the_most_similar(embedder):
    llm = StubLLM(
        {
            "The team won the match in extra time": [
                "In extra time, the team won the match",
                "It took extra time, but the team won the match",
                "The side won the game after extra time",
            ]
        }
    )
    cfg = config(methods=["paraphrase"], candidates=3, max_per_example=1, min_similarity=0.7)
    result = augment(records(), cfg, llm=llm, embedder=embedder)
    [kept] = result.accepted
    assert kept.text == "In extra time, the team won the match" and kept.meta["augmentation"]["style"] == "register"
    capped = [r for r in result.rejected if r["rejected"] == ["max_per_example"]]
    assert len(capped) == 2
    assert result.summary["caps"]["max_per_example"]["dropped"] == 2


def test_cap_on_the_augmented_share_of_training_data(embedder):
    stub = StubTranslator(GOOD)
    result = augment(records(), back_translation_only(max_share=0.2), translator=stub, embedder=embedder)
    assert len(result.accepted) == 2  # floor(0.2 * 8 / 0.8)
    assert result.summary["caps"]["max_share"] == {"limit": 0.2, "budget_variants": 2, "dropped": 1}
    assert [r["rejected"] for r in result.rejected if r["rejected"] == ["max_share"]] == [["max_share"]]
    assert result.summary["augmented_share"] == 0.2


def test_split_augments_train_only_and_drops_variants_near_eval_records(embedder):
    train = records()
    validation = [
        Record(
            id="v-0",
            format="classification",
            label="sport",
            text="Fans cheered loudly as the young runner broke the record",
        )
    ]
    test = [Record(id="t-0", format="classification", label="tech", text="The chip maker cut its prices")]
    stub = StubTranslator({**GOOD, "Fans cheered as the runner broke the record": validation[0].text})
    parts = {
        "train": Dataset(train, "classification", "x#train"),
        "validation": Dataset(validation, "classification", "x#validation"),
        "test": Dataset(test, "classification", "x#test"),
    }
    augmented, result = augment_split(parts, back_translation_only(), translator=stub, embedder=embedder)
    assert not {r.text for r in validation + test} & {t.strip("<>") for t in stub.seen}  # never varied
    leak = next(r for r in result.rejected if r["meta"]["augmentation"]["source_id"] == "sport-3")
    assert leak["rejected"] == [
        (
            "eval_overlap: near v-0 (no exact or near duplicate (estimated Jaccard ≥ 0.8 on "
            "5-character shingles) of an evaluation record)"
        )
    ]
    assert augmented["validation"] is parts["validation"] and augmented["test"] is parts["test"]
    assert augmented["train"].records == train + result.accepted and len(result.accepted) == 3
    assert result.summary["eval_records"] == 2


def test_paraphrases_from_the_tiny_model_are_batched_and_carry_provenance(tiny_llm, embedder):
    result = augment(records(), config(methods=["paraphrase"], candidates=2), llm=tiny_llm, embedder=embedder)
    summary = result.summary["methods"]["paraphrase"]
    assert summary["candidates"] == 16 and summary["engine"] == f"llm {tiny_llm.spec}"
    variants = result.accepted + [
        Record(**{k: v for k, v in r.items() if k in ("id", "text", "label", "meta")}, format="classification")
        for r in result.rejected
    ]
    assert len(variants) == 16
    styles = sorted(v.meta["augmentation"]["style"] for v in variants)
    assert styles == ["register"] * 8 + ["word_order"] * 8
    assert {v.meta["augmentation"]["prompt_version"] for v in variants} == {paraphrase.PROMPT_VERSION}


def test_paraphrase_prompt_keeps_names_numbers_and_the_label():
    prompt = paraphrase.prompt("Profits rose 5%.", "shorter", "business")
    assert "more concisely" in prompt and "Keep every name and number exactly" in prompt
    assert "The text is about business" in prompt and prompt.endswith("Text:\nProfits rose 5%.")


@pytest.mark.parametrize(
    "record, field",
    [
        (Record(id="c", format="completion", prompt="What is 2+2?", completion="4"), "prompt"),
        (
            Record(
                id="m",
                format="chat",
                messages=[
                    {"role": "user", "content": "Hi"},
                    {"role": "assistant", "content": "Hello"},
                    {"role": "user", "content": "What is 2+2?"},
                    {"role": "assistant", "content": "4"},
                ],
            ),
            "messages",
        ),
    ],
)
def test_the_input_is_varied_and_the_answer_kept(record, field):
    assert input_text(record) == "What is 2+2?"
    made = variant(Candidate(record, "How much is 2+2?", {"method": "paraphrase"}), 1)
    assert input_text(made) == "How much is 2+2?" and made.id == f"{record.id}~paraphrase-1"
    if field == "messages":
        assert made.messages[:2] == record.messages[:2] and made.messages[3] == record.messages[3]
    else:
        assert made.completion == "4"


def test_written_variants_load_back_as_training_data(tmp_path, embedder, caplog):
    result = augment(records(), back_translation_only(), translator=StubTranslator(GOOD), embedder=embedder)
    paths = write(result, tmp_path)
    with caplog.at_level(logging.WARNING):
        loaded = data.load(str(paths["accepted.jsonl"]))
    assert not caplog.records  # no fields the loader ignores
    assert [r.id for r in loaded.records] == [r.id for r in result.accepted]
    assert loaded.records[0].meta["augmentation"]["source_id"] == result.accepted[0].meta["augmentation"]["source_id"]
    rejected = [json.loads(line) for line in paths["rejected.jsonl"].read_text().splitlines()]
    assert len(rejected) == 5 and all(r["rejected"] for r in rejected)
    assert json.loads(paths["summary.json"].read_text())["accepted"] == 3


@pytest.mark.slow
@needs_apertium  # the primary back-translation engine; the LLM fallback has its own small test on the tiny model
def test_bbc_demo_variants_from_both_methods_with_the_embedded_model(embedder):
    cfg = config(candidates=2, max_new_tokens=160, translator="apertium")
    bbc = data.load("embedded:bbc-news").records[::400][:4]
    result = augment(bbc, cfg, embedder=embedder)
    methods = result.summary["methods"]
    assert set(methods) == {"backtranslation", "paraphrase"}
    assert methods["paraphrase"]["candidates"] == 8 and methods["backtranslation"]["candidates"] == 4
    assert all(0 <= f["acceptance_rate"] <= 1 for m in methods.values() for f in m["filters"].values())
    assert len(result.accepted) + len(result.rejected) == 12


def test_training_hook_augments_only_when_enabled(tmp_path, embedder):
    from deftune.data.augment import for_training

    parts = {
        "train": Dataset(records(), "classification", "x#train"),
        "validation": Dataset([], "classification", "x#validation"),
    }
    assert for_training(parts, back_translation_only(), tmp_path, translator=StubTranslator(GOOD)) is parts
    assert not (tmp_path / "augment").exists()
    augmented = for_training(
        parts, back_translation_only(enabled=True), tmp_path, translator=StubTranslator(GOOD), embedder=embedder
    )
    assert len(augmented["train"]) == 11 and augmented["validation"] is parts["validation"]
    assert len((tmp_path / "augment" / "accepted.jsonl").read_text().splitlines()) == 3
