"""Controlled paraphrasing by the base model: each candidate varies one aspect of the surface form (register, word
order, length) while the prompt asks to keep names, numbers and the meaning (and, for classification, says what
the text is about, so the label stays true). Candidates of all examples are sampled in batches."""

from __future__ import annotations

from ...config import AugmentConfig
from ...core.inference import DecodingSettings
from .llm import LLM, clean

PROMPT_VERSION = "paraphrase-v1"
STYLES = {
    "register": "Rewrite the text below in a different register (plainer or more formal wording).",
    "word_order": "Rewrite the text below with a different word order and sentence structure.",
    "shorter": "Rewrite the text below more concisely.",
    "longer": "Rewrite the text below slightly more elaborately, without adding facts.",
}
KEEP = (
    "Keep every name and number exactly as written, and keep the meaning and all the facts.{topic} Reply with "
    "the rewritten text only.\n\nText:\n{text}"
)


def prompt(text: str, style: str, label: str | None = None) -> str:
    topic = f" The text is about {label}, and must stay so." if label else ""
    return f"{STYLES[style]} {KEEP.format(topic=topic, text=text)}"


def style_of(k: int) -> str:
    """The style of the k-th candidate of an example (styles taken in turn)."""
    return list(STYLES)[k % len(STYLES)]


def paraphrase(llm: LLM, texts: list[str], labels: list[str | None], cfg: AugmentConfig, seed: int) -> list[list[str]]:
    """`cfg.candidates` sampled paraphrases per text (in input order); all prompts are generated in batches."""
    prompts = [prompt(t, style_of(k), label) for t, label in zip(texts, labels) for k in range(cfg.candidates)]
    settings = DecodingSettings(
        max_new_tokens=cfg.max_new_tokens,
        do_sample=True,
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        batch_size=cfg.batch_size,
        seed=seed,
    )
    replies = [clean(g.text) for g in llm.complete(prompts, settings)]
    return [replies[i : i + cfg.candidates] for i in range(0, len(replies), cfg.candidates)]
