"""`deftune inspect DATA [CONFIG] [key=value ...] [-n N]`: show examples as the trainer renders them with
model.spec's tokenizer and data.format."""

from __future__ import annotations

import typer

from . import common
from .common import console


def inspect(
    data_path: str = typer.Argument(..., metavar="DATA", help="data file, folder or embedded:NAME"),
    args: list[str] | None = common.ARGS,
    n: int = typer.Option(3, "-n", help="how many examples to show"),
):
    """Show how examples are rendered (model.spec's tokenizer, data.format): trained tokens in green, masked
    tokens dimmed."""
    from .. import data
    from ..core import models
    from ..data.inspect import show

    cfg = common.config(args)
    cfg.data.path = data_path
    common.quiet(True)
    dataset = data.load(cfg.data.path, cfg.data.format)
    resolved = models.resolve(cfg.model.spec)
    tokenizer = models.load_tokenizer(
        resolved, revision=cfg.model.revision, trust_remote_code=cfg.model.trust_remote_code
    )
    renderer = data.renderer_for(tokenizer, cfg.data, dataset)
    show(console, renderer, dataset.records[:n])
