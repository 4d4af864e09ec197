"""`deftune sweep [CONFIG] [key=value ...]`: hyperparameter search with Optuna; prints the trials and the best
config. Kept apart from study.py so that the CLI starts without importing Optuna."""

from __future__ import annotations

from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

console = Console()


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def sweep_command(
        args: Optional[list[str]] = typer.Argument(None, help="CONFIG then key=value overrides", show_default=False),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress output")):
    """Search hyperparameters (the `sweep` section) for the best composite validation score. Run it again with the
    same run.name to continue a stopped sweep, or in several places at once (one sweep.storage) to share it."""
    from pathlib import Path

    from ..cli import _config, _quiet
    from . import study as sweep

    cfg = _config(args)
    _quiet(quiet)
    result = sweep.sweep(cfg, quiet=quiet)
    table = Table(title=escape(f"study {result.study} ({result.storage})"))
    columns = ["number", "state", "composite", "task_score", "retention_drop", "validation_loss", *result.params]
    for column in columns:
        table.add_column(column.replace("_", " "), justify="left" if column == "state" else "right")
    for row in result.trials:
        table.add_row(*(_fmt(row.get(c)) for c in columns))
    console.print(table)
    console.print(f"trials: {', '.join(f'{n} {k.lower()}' for k, n in result.counts.items() if n)}")
    if result.best:
        console.print(f"best: trial {result.best['number']}, composite {result.best['composite']:.4f}; config "
                      f"{escape(result.best['config'])} (deftune train it), model in {escape(result.best['run_dir'])}",
                      highlight=False)
    front = ", ".join(f"#{t['number']}" for t in result.pareto["trials"])
    console.print(f"Pareto front ({result.pareto['axes']['y']} vs {result.pareto['axes']['x']}): {front or '-'}")
    console.print(f"written to {escape(result.run_dir)}/sweep: {', '.join(result.files)}", highlight=False)
    console.print(f"continue or add workers with: run.name={Path(result.run_dir).name}", highlight=False)
