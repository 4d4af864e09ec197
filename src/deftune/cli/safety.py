"""`deftune safety RUN_OR_MODEL [CONFIG] [key=value ...]`: the safety stage, then its headline figures."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from . import common
from .common import console


def safety(
    target: str = typer.Argument(
        ..., metavar="RUN_OR_MODEL", help="a run folder (base vs fine-tuned side by side) or a model spec"
    ),
    args: list[str] | None = common.ARGS,
    overwrite: bool = common.overwrite("safety"),
    quiet: bool = common.QUIET,
):
    """Bias benchmarks (CrowS-Pairs, StereoSet, BBQ, WinoBias), the content screens' recall and false-positive
    rate, PII redaction and over-refusal, written to safety.json (<run>/safety/ for a run folder). For a run
    folder only the config's safety section applies."""
    from ..safety import stage

    common.quiet(quiet)
    cfg = common.config(args) if args else None
    result = stage.safety(target, cfg=cfg, overwrite=overwrite)
    table = Table(title="safety (95% CI)")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for name, value in stage.headline(result):
        table.add_row(name, value)
    console.print(table)
    console.print(f"[bold green]results in[/] {Path(result.out_dir) / 'safety.json'} ({result.seconds:.0f} s)")
