"""`deftune sweep [CONFIG] [key=value ...]`: hyperparameter search with Optuna; prints the trials and the best
config."""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape
from rich.table import Table

from . import common
from .common import console


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def sweep(args: list[str] | None = common.ARGS, quiet: bool = common.QUIET):
    """Search hyperparameters (the `sweep` section) for the best composite validation score. Run it again with the
    same run.name to continue a stopped sweep, or in several places at once (one sweep.storage) to share it."""
    from ..sweep import study

    cfg = common.config(args)
    common.quiet(quiet)
    result = study.sweep(cfg, quiet=quiet)
    table = Table(title=escape(f"study {result.study} ({result.storage})"))
    columns = ["number", "state", "composite", "task_score", "retention_drop", "validation_loss", *result.params]
    for column in columns:
        table.add_column(column.replace("_", " "), justify="left" if column == "state" else "right")
    for row in result.trials:
        table.add_row(*(_fmt(row.get(c)) for c in columns))
    console.print(table)
    console.print(f"trials: {', '.join(f'{n} {k.lower()}' for k, n in result.counts.items() if n)}")
    if result.best:
        console.print(
            f"best: trial {result.best['number']}, composite {result.best['composite']:.4f}; config "
            f"{escape(result.best['config'])} (deftune train it), model in {escape(result.best['run_dir'])}",
            highlight=False,
        )
    front = ", ".join(f"#{t['number']}" for t in result.pareto["trials"])
    console.print(f"Pareto front ({result.pareto['axes']['y']} vs {result.pareto['axes']['x']}): {front or '-'}")
    console.print(f"written to {escape(result.run_dir)}/sweep: {', '.join(result.files)}", highlight=False)
    console.print(f"continue or add workers with: run.name={Path(result.run_dir).name}", highlight=False)
