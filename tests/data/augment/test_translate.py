"""Translators: Apertium (skipped when not installed), local seq2seq folders and the LLM fallback on tiny models."""

import pytest

from deftune.core.inference import DecodingSettings
from deftune.data.augment import translate
from deftune.data.augment.llm import clean
from deftune.errors import ConfigError, ModelError
from tests.helpers import needs_apertium

from .stubs import config

SHORT = DecodingSettings(max_new_tokens=6, batch_size=2)


@needs_apertium
def test_apertium_back_translates_a_batch_keeping_lines_and_markup_characters():
    apertium = translate.Apertium("eng", "spa")
    texts = ["The cat sleeps.\nThe dog runs.", "Profits & losses <rose> 12% in 2004.", "Hello"]
    spanish = apertium.translate(texts, "eng", "spa")
    assert len(spanish) == 3 and spanish[0].count("\n") == 1 and "gato" in spanish[0]
    back = translate.back_translate(apertium, texts, "eng", "spa")
    assert len(back) == 3 and back[0].count("\n") == 1
    assert "&" in back[1] and "12%" in back[1] and "2004" in back[1]
    assert apertium.engine.startswith("apertium eng-spa") and apertium.prompt_version is None


@needs_apertium
def test_apertium_without_the_pair_says_what_to_install():
    with pytest.raises(ConfigError, match=r"no eng-xyz.*mode.*apt-get install -y apertium apertium-eng-xyz"):
        translate.Apertium("eng", "xyz")


def test_apertium_absent_gives_the_install_command(monkeypatch):
    monkeypatch.setattr(translate.shutil, "which", lambda name: None)
    with pytest.raises(ConfigError) as raised:
        translate.Apertium("eng", "spa")
    assert "sudo apt-get install -y apertium apertium-eng-spa" in str(raised.value)
    assert raised.value.field == "data.augment.translator"


def test_auto_falls_back_to_the_llm_without_apertium(monkeypatch, tiny_llm):
    monkeypatch.setattr(translate.shutil, "which", lambda name: None)
    translator = translate.build(config().data.augment, lambda: tiny_llm)
    assert isinstance(translator, translate.LLMTranslator) and translator.engine == f"llm {tiny_llm.spec}"


@needs_apertium
def test_auto_prefers_apertium_when_installed(tiny_llm):
    assert isinstance(translate.build(config().data.augment, lambda: tiny_llm), translate.Apertium)


def test_llm_translator_on_the_tiny_model(tiny_llm):
    translator = translate.LLMTranslator(tiny_llm, SHORT)
    out = translate.back_translate(translator, ["The cat sleeps.", "A much longer sentence about dogs."], "eng", "spa")
    assert len(out) == 2 and all(isinstance(t, str) for t in out)
    assert translator.prompt_version == translate.TRANSLATE_VERSION


def test_seq2seq_folders_translate_in_batches(tiny_seq2seq):
    cfg = config(translator="seq2seq", seq2seq_to=str(tiny_seq2seq), seq2seq_back=str(tiny_seq2seq))
    translator = translate.build(cfg.data.augment, llm=lambda: pytest.fail("the LLM is not needed"))
    assert isinstance(translator, translate.Seq2Seq)
    out = translate.back_translate(translator, ["one", "two words", "three words here"], "eng", "spa")
    assert len(out) == 3 and all(isinstance(t, str) for t in out)


def test_seq2seq_folder_that_is_no_model_names_the_config_key(tmp_path, tiny_seq2seq):
    with pytest.raises(ModelError) as raised:
        translate.Seq2Seq("eng", "spa", str(tiny_seq2seq), str(tmp_path), SHORT)
    assert raised.value.field == "data.augment.seq2seq_back" and raised.value.file == str(tmp_path)


def test_seq2seq_translator_needs_both_folders():
    from deftune.config import validate

    with pytest.raises(ConfigError, match="translator seq2seq needs seq2seq_to and seq2seq_back"):
        validate({"data": {"augment": {"translator": "seq2seq", "seq2seq_to": "a"}}})


@pytest.mark.parametrize(
    "reply, text",
    [
        ("Here is the rewritten text:\nThe cat sleeps.", "The cat sleeps."),
        ('"The cat sleeps."', "The cat sleeps."),
        ("Sure! Here's the translation: El gato duerme.", "El gato duerme."),
        ("The cat: it sleeps.", "The cat: it sleeps."),
    ],
)
def test_clean_strips_preambles_and_quotes(reply, text):
    assert clean(reply) == text
