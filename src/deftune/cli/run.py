"""`deftune run [CONFIG] [key=value ...] [--from STAGE]`: every stage into one run folder, then a table of what
ran and what was skipped."""

from __future__ import annotations

import typer

from . import common
from .common import console


def run(
    args: list[str] | None = common.ARGS,
    start: str | None = typer.Option(
        None, "--from", help="re-run from this stage on (audit, plan, train, evaluate, safety, report)"
    ),
    quiet: bool = common.QUIET,
):
    """The whole careful process into one run folder: audit, plan, train (augmenting first when enabled),
    evaluate, safety, report.
    Stages whose inputs did not change are skipped. With no arguments: the demo."""
    from rich.table import Table

    from .. import pipeline

    cfg = common.config(args)
    common.quiet(quiet)
    run_dir, outcomes = pipeline.run(
        cfg,
        start=start,
        announce=console.print,
        progress=(lambda _: None) if quiet else lambda s: console.rule(f"stage: {s}"),
    )
    table = Table(title=f"deftune run: {run_dir}")
    for column in ("stage", "status", "seconds", "artifact"):
        table.add_column(column, justify="right" if column == "seconds" else "left")
    for o in outcomes:
        table.add_row(o.stage, o.status, f"{o.seconds:.0f}" if o.status == "ran" else "", o.artifact or "")
    console.print(table)
    console.print(f"[bold green]report:[/] {run_dir / 'report.html'}")
