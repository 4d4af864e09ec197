import json

import pytest
import torch

from deftune.core import models, resources
from deftune.errors import ModelError
from deftune.testing import tiny_gguf


def test_local_folder_spec(tiny_model):
    resolved = models.resolve(str(tiny_model))
    assert resolved.kind == "local"
    model, tokenizer = models.load(str(tiny_model))
    assert model.config.num_hidden_layers == 2 and model.config.hidden_size == 64
    assert tokenizer.chat_template and tokenizer.pad_token is not None


def test_local_folder_refuses_pickle_weights(tmp_path, tiny_model):
    from transformers import AutoModelForCausalLM

    folder = tmp_path / "pickled"
    folder.mkdir()
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    model.config.save_pretrained(folder)
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    with pytest.raises(ModelError, match="cannot load model"):
        models.load_model(models.resolve(str(folder)))


def test_bad_specs_are_clear(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="no config.json"):
        models.resolve(str(tmp_path / "empty"))
    with pytest.raises(ModelError, match="GGUF file not found"):
        models.resolve(str(tmp_path / "nope.gguf"))
    with pytest.raises(ModelError, match="unknown embedded model"):
        models.resolve("embedded:gpt-5")
    with pytest.raises(ModelError, match="model not found"):
        models.resolve(str(tmp_path / "missing-dir"))


def test_hub_id_is_passed_to_transformers_and_offline_failure_is_clear():
    resolved = models.resolve("SomeOrg/some-model")
    assert (resolved.kind, resolved.location) == ("hub", "SomeOrg/some-model")
    with pytest.raises(ModelError, match="SomeOrg/some-model"):
        models.load_tokenizer(resolved)  # HF_HUB_OFFLINE is set for the tests: fails without network


@pytest.mark.slow
def test_gguf_is_converted_once_to_safetensors_and_matches(tmp_path):
    from transformers import AutoModelForCausalLM

    gguf = tiny_gguf(tmp_path / "tiny.gguf")
    folder = resources.cache_dir() / "models"
    before = set(folder.iterdir()) if folder.is_dir() else set()  # other tests' conversions (the embedded model)
    resolved = models.resolve(str(gguf))
    assert resolved.kind == "gguf" and resolved.location.startswith(str(folder))
    converted = sorted(set(folder.iterdir()) - before)
    assert [p.name for p in converted] == [resolved.location.rsplit("/", 1)[-1]]  # no temporary leftovers
    assert list(converted[0].glob("*.safetensors"))
    assert "quantization_config" not in json.loads((converted[0] / "config.json").read_text())
    stamp = (converted[0] / "config.json").stat().st_mtime_ns
    assert models.resolve(str(gguf)).location == resolved.location
    assert (converted[0] / "config.json").stat().st_mtime_ns == stamp  # reused, not converted again

    model, tokenizer = models.load(str(gguf))
    direct = AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file="tiny.gguf")
    ids = tokenizer("The cache holds the same weights.", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert torch.equal(model(ids).logits, direct(ids).logits)


@pytest.mark.slow
def test_interrupted_conversion_leaves_no_cache_entry(tmp_path, monkeypatch):
    import transformers

    gguf = tiny_gguf(tmp_path / "tiny.gguf", seed=1)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(transformers.PreTrainedModel, "save_pretrained", interrupted)
    with pytest.raises(KeyboardInterrupt):
        models.resolve(str(gguf))
    digest = models._file_digest(gguf)
    assert not [p for p in (resources.cache_dir() / "models").iterdir() if digest in p.name]
    monkeypatch.undo()
    assert digest in models.resolve(str(gguf)).location  # the next attempt converts cleanly


@pytest.mark.slow
def test_embedded_default_model_chats():
    model, tokenizer = models.load("embedded:smollm2-135m-instruct")
    assert model.config.num_hidden_layers == 30
    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    out = model.generate(**ids, max_new_tokens=12, do_sample=False)
    assert "Paris" in tokenizer.decode(out[0, ids["input_ids"].shape[1] :])
