"""Inference shared by every stage: batched generation and log-likelihood scoring, and reading labels from answers.

Generation: prompts sorted by length and left-padded, KV cache on, greedy by default.

Log-likelihood scoring: how likely a model finds each continuation of a prompt, and plain-text perplexity.
Prompts run once per batch (left-padded, logits kept for the last position only) and leave their KV cache, whose
rows are then repeated once per option: scoring K options costs one prompt pass plus one short pass of all the
options together. The prompt pass can be generation's own (`generate_and_score`), so a classifier's answer and its
label probabilities cost one prompt pass. Prompt and continuation are tokenized separately, as the renderer does
for training."""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import numpy as np
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
        yield order[start : start + size]


def stop_ids(model, tokenizer) -> list[int]:
    """The end-of-sequence ids: the tokenizer's and the generation config's (e.g. end-of-turn tokens)."""
    configured = getattr(model.generation_config, "eos_token_id", None)
    configured = configured if isinstance(configured, (list, tuple)) else [configured]
    return sorted({tokenizer.eos_token_id, *(i for i in configured if i is not None)})


def generate_batch(model, tokenizer, enc, settings: DecodingSettings, **extra):
    """Generate for one tokenized, left-padded batch; returns the Generations and generate()'s output."""
    eos = stop_ids(model, tokenizer)
    sampling = {"temperature": settings.temperature, "top_p": settings.top_p} if settings.do_sample else {}
    out = model.generate(
        **enc,
        max_new_tokens=settings.max_new_tokens,
        do_sample=settings.do_sample,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=eos,
        use_cache=True,
        return_dict_in_generate=True,
        **sampling,
        **extra,
    )
    new = out.sequences[:, enc["input_ids"].shape[1] :]
    stopped = torch.isin(new, torch.tensor(eos, device=new.device))
    generations = []
    for row in range(len(new)):
        finished = bool(stopped[row].any())
        tokens = int(stopped[row].int().argmax()) + 1 if finished else new.shape[1]
        generations.append(
            Generation(tokenizer.decode(new[row, :tokens], skip_special_tokens=True).strip(), tokens, finished)
        )
    return generations, out


def encode(tokenizer, texts: list[str], device):
    """Left-padded batch of rendered prompts (their special tokens are already in the text)."""
    return tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)


def by_length(prompts: list[str]) -> list[int]:
    return sorted(range(len(prompts)), key=lambda i: len(prompts[i]))


def generate_detailed(
    model, tokenizer, prompts: list[str], settings: DecodingSettings = DecodingSettings()
) -> list[Generation]:
    """Continue each prompt (already rendered text, special tokens included); results come back in input order.

    Prompts are processed in batches of similar length (sorted), left-padded so every row's last prompt token
    sits at the same position."""
    outputs: list[Generation | None] = [None] * len(prompts)
    if settings.do_sample and settings.seed is not None:
        torch.manual_seed(settings.seed)
    with inference(model, tokenizer):
        for batch in batches(by_length(prompts), settings.batch_size):
            generations, _ = generate_batch(
                model, tokenizer, encode(tokenizer, [prompts[i] for i in batch], model.device), settings
            )
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


# ---- log-likelihood scoring ------------------------------------------------------------------------


@dataclass(frozen=True)
class OptionScore:
    logprob: float  # summed log-probability of the option's tokens, in nats
    tokens: int
    chars: int


def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def _options_pass(model, cache, prompt_mask, first, token_lists: list[list[int]], pad: int) -> list[float]:
    """Summed log-probabilities of one continuation per prompt row, run on (and extending) the prompts' cache."""
    width = max(len(t) for t in token_lists)
    if width == 0:
        return [0.0] * len(token_lists)
    ids = torch.full((len(token_lists), width), pad, dtype=torch.long, device=prompt_mask.device)
    mask = torch.zeros_like(ids)
    for row, tokens in enumerate(token_lists):
        ids[row, : len(tokens)] = torch.tensor(tokens)
        mask[row, : len(tokens)] = 1
    positions = prompt_mask.sum(-1, keepdim=True) + torch.arange(width, device=ids.device)
    out = model(
        input_ids=ids,
        attention_mask=torch.cat([prompt_mask, mask], dim=1),
        position_ids=positions,
        cache=cache,
        use_cache=True,
    )
    logp = out.logits.float().log_softmax(-1)
    token_logp = torch.cat([first.gather(1, ids[:, :1]), logp[:, :-1].gather(2, ids[:, 1:, None])[..., 0]], dim=1)
    return (token_logp * mask).sum(-1).tolist()


def _score_batch(model, tokenizer, cache, prompt_mask, first_logits, options: list[list[str]]) -> list[list]:
    """Score every row's options in one pass: the prompts' cache rows are repeated once per option (in place: the
    cache is spent), and first_logits predict each option's first token."""
    first = first_logits.float().log_softmax(-1)
    pairs = [(r, k) for r, opts in enumerate(options) for k in range(len(opts))]
    rows = torch.tensor([r for r, _ in pairs], device=prompt_mask.device)
    tokens = [_ids(tokenizer, options[r][k]) for r, k in pairs]
    cache.batch_select_indices(rows)
    sums = _options_pass(model, cache, prompt_mask[rows], first[rows], tokens, tokenizer.pad_token_id)
    scores: list[list[OptionScore]] = [[] for _ in options]
    for (r, k), t, logprob in zip(pairs, tokens, sums):
        scores[r].append(OptionScore(logprob, len(t), len(options[r][k])))
    return scores


def option_scores(
    model, tokenizer, prompts: list[str], options: list[list[str]], *, batch_size: int = 16
) -> list[list[OptionScore]]:
    """For each prompt, the log-likelihood of each of its options as the continuation."""
    if len(prompts) != len(options):
        raise ValueError("one list of options per prompt")
    scores: list = [None] * len(prompts)
    with inference(model, tokenizer):
        for batch in batches(by_length(prompts), batch_size):
            enc = encode(tokenizer, [prompts[i] for i in batch], model.device)
            mask = enc["attention_mask"]
            out = model(
                input_ids=enc["input_ids"],
                attention_mask=mask,
                position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
                use_cache=True,
                logits_to_keep=1,
            )
            found = _score_batch(model, tokenizer, out.cache, mask, out.logits[:, -1], [options[i] for i in batch])
            for i, row in zip(batch, found):
                scores[i] = row
    return scores


def generate_and_score(
    model, tokenizer, prompts: list[str], options: list[list[str]], settings: DecodingSettings
) -> tuple[list[Generation], list[list[OptionScore]]]:
    """Generate for each prompt and score its options from the same prompt pass: generation fills a KV cache,
    which is cut back to the prompt for the options (the prompt, the costly part, runs once)."""
    from transformers import DynamicCache

    generations: list = [None] * len(prompts)
    scores: list = [None] * len(prompts)
    if settings.do_sample and settings.seed is not None:
        torch.manual_seed(settings.seed)
    with inference(model, tokenizer):
        for batch in batches(by_length(prompts), settings.batch_size):
            enc = encode(tokenizer, [prompts[i] for i in batch], model.device)
            cache = DynamicCache(config=model.config)
            found, out = generate_batch(model, tokenizer, enc, settings, cache=cache, output_logits=True)
            cache.crop(enc["input_ids"].shape[1] - cache.get_seq_length())
            rows = _score_batch(
                model, tokenizer, cache, enc["attention_mask"], out.logits[0], [options[i] for i in batch]
            )
            for i, generation, row in zip(batch, found, rows):
                generations[i], scores[i] = generation, row
    return generations, scores


def probabilities(scores: list[list[OptionScore]]) -> np.ndarray:
    """(n, K) softmax over each row's option log-likelihoods."""
    logp = np.array([[s.logprob for s in row] for row in scores]).reshape(len(scores), -1)
    logp -= logp.max(axis=1, keepdims=True)
    probs = np.exp(logp)
    return probs / probs.sum(axis=1, keepdims=True)


def token_losses(model, tokenizer, texts: list[str], *, max_tokens: int, batch_size: int = 8) -> np.ndarray:
    """(n, 2): per text, the summed negative log-likelihood (nats) of its tokens after the first, and their count;
    texts are cut to max_tokens tokens. Perplexity over texts is exp(sum nll / sum count)."""
    rows = np.zeros((len(texts), 2))
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    with inference(model, tokenizer):
        tokenizer.padding_side = "right"  # restored by `inference`
        for batch in batches(order, batch_size):
            enc = tokenizer(
                [texts[i] for i in batch],
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=max_tokens,
                add_special_tokens=False,
            ).to(model.device)
            logp = model(**enc).logits[:, :-1].float().log_softmax(-1)
            target, mask = enc["input_ids"][:, 1:], enc["attention_mask"][:, 1:]
            nll = -(logp.gather(2, target[..., None])[..., 0] * mask).sum(-1)
            rows[batch] = np.column_stack([nll.tolist(), mask.sum(-1).tolist()])
    return rows
