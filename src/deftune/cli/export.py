"""`deftune export RUN [--merge] [--out DIR]`: export a run's result; it reads the run, so it takes no config."""

from __future__ import annotations

import typer

from . import common
from .common import console


def export(
    run: str = typer.Argument(..., metavar="RUN", help="run folder"),
    merge: bool = typer.Option(False, "--merge", help="fold the adapter into the base model"),
    out: str | None = typer.Option(None, "--out", help="target folder (default: RUN/export/...)"),
):
    """Export a run's result: the adapter in PEFT format, or with --merge one full model."""
    from ..train.export import export as export_run

    common.quiet(True)
    console.print(f"exported to {export_run(run, merge=merge, out=out)}")
