"""`deftune pairs PROMPTS [CONFIG] [key=value ...] --out FILE`: preference pairs from model.spec's screened
answers."""

from __future__ import annotations

import typer

from . import common
from .common import console


def pairs(
    prompts: str = typer.Argument(..., metavar="PROMPTS", help="prompts (JSONL with 'text', or one per line)"),
    args: list[str] | None = common.ARGS,
    out: str = typer.Option(..., "--out", "-o", help="JSONL preference file to write"),
    helpful: bool = typer.Option(
        True,
        "--helpful/--no-helpful",
        help="also pair clean answers to safe prompts against the refusal (against over-refusal)",
    ),
):
    """Answer PROMPTS with model.spec, screen the answers and write preference pairs: blocked answers rejected in
    favour of the refusal message, answers leaking personal data in favour of their redacted form."""
    from ..core import models
    from ..core.inference import DecodingSettings, generate
    from ..core.precision import choose as choose_precision
    from ..safety.guard import chat_prompt
    from ..safety.preference import build_pairs, write_pairs
    from ..safety.screen import Screen, read_texts

    cfg = common.config(args)
    common.quiet(True)
    texts = [t for _, t in read_texts(prompts)]
    lm, tokenizer = models.load(
        cfg.model.spec,
        dtype=cfg.model.dtype,
        revision=cfg.model.revision,
        trust_remote_code=cfg.model.trust_remote_code,
    )
    with choose_precision(cfg.model.precision).autocast():
        answers = generate(
            lm,
            tokenizer,
            [chat_prompt(tokenizer, t) for t in texts],
            DecodingSettings(max_new_tokens=64, batch_size=cfg.safety.batch_size),
        )
    found = build_pairs(texts, answers, Screen(cfg.safety), cfg.safety.refusal, helpful=helpful)
    write_pairs(out, found)
    console.print(f"{len(found)} pairs from {len(texts)} prompts written to {out}")
