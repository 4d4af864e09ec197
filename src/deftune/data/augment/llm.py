"""The causal language model that paraphrases (and translates, as the fallback engine): loading, chat prompts,
batched generation through deftune.evaluate.generate, and cleaning of its replies."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ...config import ModelConfig
from ...core import models
from ...core.inference import DecodingSettings, Generation, generate_detailed
from ...core.precision import Precision
from ...core.precision import choose as choose_precision

_PREAMBLE = re.compile(
    r"^\s*(?:sure|certainly|okay|here(?:'s| is| are)|rewritten|paraphrase|translation)\b[^\n]*:"
    r"[ \t]*\n?",
    re.IGNORECASE,
)
_QUOTES = {'"': '"', "“": "”", "'": "'"}


@dataclass
class LLM:
    model: object
    tokenizer: object
    spec: str
    compute: Precision  # what its matmuls run in (model.precision on this machine)

    def prompt(self, content: str) -> str:
        """One user turn rendered for generation (the chat template when the tokenizer has one)."""
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(
                [{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True
            )
        return content + "\n\n"

    def complete(self, contents: list[str], settings: DecodingSettings) -> list[Generation]:
        with self.compute.autocast():
            return generate_detailed(self.model, self.tokenizer, [self.prompt(c) for c in contents], settings)


def load(spec: str, model_cfg: ModelConfig) -> LLM:
    model, tokenizer = models.load(
        spec, dtype=model_cfg.dtype, revision=model_cfg.revision, trust_remote_code=model_cfg.trust_remote_code
    )
    return LLM(model, tokenizer, spec, choose_precision(model_cfg.precision))


def clean(reply: str) -> str:
    """The reply without a leading "Here is the rewritten text:" line or quotes around it all."""
    text = _PREAMBLE.sub("", reply.strip(), count=1).strip()
    if len(text) > 1 and _QUOTES.get(text[0]) == text[-1]:
        text = text[1:-1].strip()
    return text
