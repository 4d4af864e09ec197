"""Log-likelihood scoring: how likely a model finds each continuation of a prompt, and plain-text perplexity.

Prompts run once per batch (left-padded, logits kept for the last position only) and leave their KV cache, whose
rows are then repeated once per option: scoring K options costs one prompt pass plus one short pass of all the
options together. The
prompt pass can be generation's own (`generate_and_score`), so a classifier's answer and its label probabilities
cost one prompt pass. Prompt and continuation are tokenized separately, as the renderer does for training."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from ..data.records import Record
from ..data.render import Renderer
from .generate import DecodingSettings, Generation, batches, by_length, encode, generate_batch, inference


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
        ids[row, :len(tokens)] = torch.tensor(tokens)
        mask[row, :len(tokens)] = 1
    positions = prompt_mask.sum(-1, keepdim=True) + torch.arange(width, device=ids.device)
    out = model(input_ids=ids, attention_mask=torch.cat([prompt_mask, mask], dim=1), position_ids=positions,
                cache=cache, use_cache=True)
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


def option_scores(model, tokenizer, prompts: list[str], options: list[list[str]], *,
                  batch_size: int = 16) -> list[list[OptionScore]]:
    """For each prompt, the log-likelihood of each of its options as the continuation."""
    if len(prompts) != len(options):
        raise ValueError("one list of options per prompt")
    scores: list = [None] * len(prompts)
    with inference(model, tokenizer):
        for batch in batches(by_length(prompts), batch_size):
            enc = encode(tokenizer, [prompts[i] for i in batch], model.device)
            mask = enc["attention_mask"]
            out = model(input_ids=enc["input_ids"], attention_mask=mask,
                        position_ids=(mask.cumsum(-1) - 1).clamp(min=0), use_cache=True, logits_to_keep=1)
            found = _score_batch(model, tokenizer, out.cache, mask, out.logits[:, -1], [options[i] for i in batch])
            for i, row in zip(batch, found):
                scores[i] = row
    return scores


def generate_and_score(model, tokenizer, prompts: list[str], options: list[list[str]],
                       settings: DecodingSettings) -> tuple[list[Generation], list[list[OptionScore]]]:
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
            rows = _score_batch(model, tokenizer, cache, enc["attention_mask"], out.logits[0],
                                [options[i] for i in batch])
            for i, generation, row in zip(batch, found, rows):
                generations[i], scores[i] = generation, row
    return generations, scores


def answer_text(renderer: Renderer, record: Record, label: str) -> str:
    """The trained answer text for `record` if its label were `label` (e.g. the label and end-of-turn token)."""
    segments = renderer.segments(replace(record, label=label))
    return [text for text, trained in segments if trained][-1]


def label_options(renderer: Renderer, records: list[Record]) -> tuple[list[str], list[list[str]]]:
    """Prompts, and per prompt the answer text of every label in the renderer's label set."""
    return ([renderer.prompt_text(r) for r in records],
            [[answer_text(renderer, r, label) for label in renderer.labels] for r in records])


def probabilities(scores: list[list[OptionScore]]) -> np.ndarray:
    """(n, K) softmax over each row's option log-likelihoods."""
    logp = np.array([[s.logprob for s in row] for row in scores]).reshape(len(scores), -1)
    logp -= logp.max(axis=1, keepdims=True)
    probs = np.exp(logp)
    return probs / probs.sum(axis=1, keepdims=True)


def label_probabilities(model, tokenizer, renderer: Renderer, records: list[Record], *,
                        batch_size: int = 16) -> np.ndarray:
    """(n, K) probabilities of the renderer's labels as the answer (softmax over the labels' log-likelihoods,
    each answer through its end-of-turn token, so a label that prefixes another is not favoured)."""
    prompts, options = label_options(renderer, records)
    return probabilities(option_scores(model, tokenizer, prompts, options, batch_size=batch_size))


def token_losses(model, tokenizer, texts: list[str], *, max_tokens: int, batch_size: int = 8) -> np.ndarray:
    """(n, 2): per text, the summed negative log-likelihood (nats) of its tokens after the first, and their count;
    texts are cut to max_tokens tokens. Perplexity over texts is exp(sum nll / sum count)."""
    rows = np.zeros((len(texts), 2))
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    with inference(model, tokenizer):
        tokenizer.padding_side = "right"  # restored by `inference`
        for batch in batches(order, batch_size):
            enc = tokenizer([texts[i] for i in batch], return_tensors="pt", padding=True, truncation=True,
                            max_length=max_tokens, add_special_tokens=False).to(model.device)
            logp = model(**enc).logits[:, :-1].float().log_softmax(-1)
            target, mask = enc["input_ids"][:, 1:], enc["attention_mask"][:, 1:]
            nll = -(logp.gather(2, target[..., None])[..., 0] * mask).sum(-1)
            rows[batch] = np.column_stack([nll.tolist(), mask.sum(-1).tolist()])
    return rows
