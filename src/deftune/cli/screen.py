"""`deftune screen TEXTS [CONFIG] [key=value ...] [--out FILE]`: one JSON verdict per text, on stdout or in FILE."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from . import common
from .common import err_console


def screen(
    texts: str = typer.Argument(
        ..., metavar="TEXTS", help="JSONL with a 'text' field (.jsonl), or plain text with one item per line"
    ),
    args: list[str] | None = common.ARGS,
    out: str | None = typer.Option(None, "--out", "-o", help="write the verdicts here (default: stdout)"),
):
    """Screen texts (prompts, model outputs, training data) with the config's safety section: one JSON verdict per
    item with `flagged`, `categories`, the `rules` that fired and the `redacted` text."""
    from ..safety.screen import Screen, read_texts

    cfg = common.config(args)
    items = read_texts(texts)
    verdicts = Screen(cfg.safety)([text for _, text in items])
    lines = [json.dumps({"id": id_, **v.to_json()}, ensure_ascii=False) + "\n" for (id_, _), v in zip(items, verdicts)]
    if out:
        from ..core.files import write_atomic

        write_atomic(Path(out), "".join(lines))
        flagged = sum(v.flagged for v in verdicts)
        err_console.print(f"{flagged} of {len(verdicts)} items flagged; verdicts in {out}", highlight=False)
    else:
        sys.stdout.writelines(lines)
