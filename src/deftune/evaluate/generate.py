"""Batched generation: prompts sorted by length and left-padded, KV cache on, greedy by default."""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import torch


@dataclass(frozen=True)
class DecodingSettings:
    max_new_tokens: int = 16
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    batch_size: int = 16
    seed: int | None = None  # seeds sampling (greedy decoding ignores it)

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Generation:
    text: str
    tokens: int  # new tokens, through the end-of-sequence token when there was one
    finished: bool  # stopped by an end-of-sequence token rather than by max_new_tokens


@contextmanager
def inference(model, tokenizer):
    """Eval mode and left padding for the duration, restored afterwards."""
    was_training, side = model.training, tokenizer.padding_side
    model.eval()
    tokenizer.padding_side = "left"
    try:
        with torch.no_grad():
            yield
    finally:
        tokenizer.padding_side = side
        model.train(was_training)


def batches(order: list[int], size: int):
    for start in range(0, len(order), size):
        yield order[start:start + size]


def stop_ids(model, tokenizer) -> list[int]:
    """The end-of-sequence ids: the tokenizer's and the generation config's (e.g. end-of-turn tokens)."""
    configured = getattr(model.generation_config, "eos_token_id", None)
    configured = configured if isinstance(configured, (list, tuple)) else [configured]
    return sorted({tokenizer.eos_token_id, *(i for i in configured if i is not None)})


def generate_batch(model, tokenizer, enc, settings: DecodingSettings, **extra):
    """Generate for one tokenized, left-padded batch; returns the Generations and generate()'s output."""
    eos = stop_ids(model, tokenizer)
    sampling = {"temperature": settings.temperature, "top_p": settings.top_p} if settings.do_sample else {}
    out = model.generate(**enc, max_new_tokens=settings.max_new_tokens, do_sample=settings.do_sample,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=eos, use_cache=True,
                         return_dict_in_generate=True, **sampling, **extra)
    new = out.sequences[:, enc["input_ids"].shape[1]:]
    stopped = torch.isin(new, torch.tensor(eos, device=new.device))
    generations = []
    for row in range(len(new)):
        finished = bool(stopped[row].any())
        tokens = int(stopped[row].int().argmax()) + 1 if finished else new.shape[1]
        generations.append(Generation(tokenizer.decode(new[row, :tokens], skip_special_tokens=True).strip(),
                                      tokens, finished))
    return generations, out


def encode(tokenizer, texts: list[str], device):
    """Left-padded batch of rendered prompts (their special tokens are already in the text)."""
    return tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)


def by_length(prompts: list[str]) -> list[int]:
    return sorted(range(len(prompts)), key=lambda i: len(prompts[i]))


def generate_detailed(model, tokenizer, prompts: list[str],
                      settings: DecodingSettings = DecodingSettings()) -> list[Generation]:
    """Continue each prompt (already rendered text, special tokens included); results come back in input order.

    Prompts are processed in batches of similar length (sorted), left-padded so every row's last prompt token
    sits at the same position."""
    outputs: list[Generation | None] = [None] * len(prompts)
    if settings.do_sample and settings.seed is not None:
        torch.manual_seed(settings.seed)
    with inference(model, tokenizer):
        for batch in batches(by_length(prompts), settings.batch_size):
            generations, _ = generate_batch(model, tokenizer, encode(tokenizer, [prompts[i] for i in batch],
                                                                      model.device), settings)
            for i, generation in zip(batch, generations):
                outputs[i] = generation
    return outputs


def generate(model, tokenizer, prompts: list[str], settings: DecodingSettings = DecodingSettings()) -> list[str]:
    """The generated texts only (see `generate_detailed`)."""
    return [g.text for g in generate_detailed(model, tokenizer, prompts, settings)]


def _plain(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def parse_label(answer: str, labels: list[str]) -> str | None:
    """The label a generated answer names: the answer itself (ignoring case, punctuation and spacing), else the one
    label it mentions as a whole word; None when it names none or several."""
    plain = _plain(answer)
    for label in labels:
        if plain == _plain(label):
            return label
    named = [label for label in labels if _plain(label) and re.search(rf"\b{re.escape(_plain(label))}\b", plain)]
    return named[0] if len(named) == 1 else None
