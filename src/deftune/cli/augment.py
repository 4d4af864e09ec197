"""`deftune augment DATA [CONFIG] [key=value ...]`: vary the training part of DATA's split (the split training uses:
`data.validation_path`/`data.test_path`, else the seeded split), write <run>/augment/accepted.jsonl,
rejected.jsonl and summary.json, and print the acceptance rates per method and filter."""

from __future__ import annotations

import logging

import typer
from rich.table import Table

from . import common
from .common import console


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{100 * rate:.0f}%"


def summarise(summary: dict) -> Table:
    methods = summary["methods"]
    table = Table(
        title=f"augmentation of {summary['training_records']} training records "
        f"({summary['eval_records']} eval records kept apart)"
    )
    table.add_column("")
    for method, stats in methods.items():
        table.add_column(f"{method}\n{stats['engine']}", justify="right")
    table.add_row("candidates", *(str(s["candidates"]) for s in methods.values()))
    names = list(dict.fromkeys(name for s in methods.values() for name in s["filters"]))
    for name in names:
        table.add_row(
            f"  passes {name}",
            *(
                _percent(s["filters"][name]["acceptance_rate"]) if name in s["filters"] else "-"
                for s in methods.values()
            ),
        )
    table.add_row("passes all filters", *(str(s["passed_all_filters"]) for s in methods.values()))
    table.add_row(
        "accepted (after caps)", *(f"{s['accepted']} ({_percent(s['acceptance_rate'])})" for s in methods.values())
    )
    return table


def augment(
    data_path: str = typer.Argument(..., metavar="DATA", help="data file, folder or embedded:NAME"),
    args: list[str] | None = common.ARGS,
    overwrite: bool = common.overwrite("augment"),
    quiet: bool = common.QUIET,
):
    """Make meaning-preserving variants of the training records (back-translation, paraphrases by the base
    model), filtered. Only the training part of the split that training uses is varied; variants near a
    validation or test record are dropped."""
    from .. import data
    from ..core import runs
    from ..data.augment import pipeline

    cfg = common.config(args)
    cfg.data.path = data_path
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(message)s")
    parts = data.load_splits(cfg.data, cfg.run.seed)
    out_dir = runs.prepare(cfg, "augment", overwrite=overwrite) / "augment"
    _, result = pipeline.augment_split(parts, cfg)
    paths = pipeline.write(result, out_dir)
    if result.summary["methods"]:
        console.print(summarise(result.summary))
    s = result.summary
    console.print(
        f"accepted {s['accepted']} of {s['candidates']} candidates (augmented share "
        f"{_percent(s['augmented_share'])}); written to {paths['accepted.jsonl'].parent}",
        highlight=False,
    )
