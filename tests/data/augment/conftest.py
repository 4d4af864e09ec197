import pytest

from deftune.config import Config


@pytest.fixture(scope="session")
def embedder():
    from deftune.data.augment.filters import Embedder

    return Embedder()


@pytest.fixture(scope="session")
def tiny_llm(tiny_model):
    from deftune.data.augment.llm import load

    return load(str(tiny_model), Config().model)


@pytest.fixture(scope="session")
def tiny_seq2seq(tmp_path_factory, tokenizer):
    """A tiny random MarianMT-style model (safetensors) with the SmolLM2 tokenizer."""
    import torch
    from transformers import MarianConfig, MarianMTModel

    path = tmp_path_factory.mktemp("seq2seq") / "model"
    config = MarianConfig(
        vocab_size=len(tokenizer),
        d_model=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    MarianMTModel(config).save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path
