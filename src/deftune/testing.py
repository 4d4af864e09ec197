"""Helpers for tests and benchmarks: a tiny randomly initialised model with the embedded model's architecture
(Llama) and real tokenizer, so that code paths run in seconds."""

from __future__ import annotations

from pathlib import Path

import torch

from .core import resources


def embedded_tokenizer():
    """The SmolLM2 tokenizer (with its chat template), read straight from the embedded GGUF file."""
    from transformers import AutoTokenizer

    gguf = resources.smollm2_gguf()
    return AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)


def tiny_model_dir(path: str | Path, *, tokenizer=None, layers: int = 2, hidden: int = 64, seed: int = 0) -> Path:
    """Write a tiny random Llama model (safetensors) plus the SmolLM2 tokenizer to `path` and return it."""
    from transformers import LlamaConfig, LlamaForCausalLM

    path = Path(path)
    tokenizer = tokenizer or embedded_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=hidden // 4,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        initializer_range=0.2,  # large enough that LoRA alone can move the logits
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path


def tiny_gguf(path: str | Path, *, layers: int = 2, hidden: int = 64, seed: int = 0) -> Path:
    """Write a tiny random Llama model as a GGUF file (fp32 tensors), with the embedded model's tokenizer
    metadata copied over, so the GGUF loading path can be tested in seconds."""
    import gguf
    import numpy as np

    source = gguf.GGUFReader(str(resources.smollm2_gguf()))
    path = Path(path)
    writer = gguf.GGUFWriter(str(path), "llama")
    heads, kv_heads, ffn = 4, 2, 2 * hidden
    head_dim = hidden // heads
    writer.add_context_length(2048)
    writer.add_embedding_length(hidden)
    writer.add_block_count(layers)
    writer.add_feed_forward_length(ffn)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_dimension_count(head_dim)
    for name, field in source.fields.items():
        if not name.startswith("tokenizer."):
            continue
        vtype = field.types[0]
        sub = field.types[1] if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(name, field.contents(), vtype, sub)
    vocab = len(source.fields["tokenizer.ggml.tokens"].data)
    writer.add_vocab_size(vocab)
    rng = np.random.default_rng(seed)

    def weight(*shape):
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    writer.add_tensor("token_embd.weight", weight(vocab, hidden))
    writer.add_tensor("output_norm.weight", np.ones(hidden, dtype=np.float32))
    for i in range(layers):
        for name, shape in (
            ("attn_q", (hidden, hidden)),
            ("attn_k", (kv_heads * head_dim, hidden)),
            ("attn_v", (kv_heads * head_dim, hidden)),
            ("attn_output", (hidden, hidden)),
            ("ffn_gate", (ffn, hidden)),
            ("ffn_up", (ffn, hidden)),
            ("ffn_down", (hidden, ffn)),
        ):
            writer.add_tensor(f"blk.{i}.{name}.weight", weight(*shape))
        writer.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(hidden, dtype=np.float32))
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(hidden, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
