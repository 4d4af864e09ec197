"""`deftune balance DATA [CONFIG] [key=value ...] --out FILE`: balanced training data and the cell counts."""

from __future__ import annotations

from pathlib import Path

import typer

from . import common
from .common import console


def balance(
    data_path: str = typer.Argument(..., metavar="DATA", help="training data file or folder"),
    args: list[str] | None = common.ARGS,
    out: str = typer.Option(..., "--out", "-o", help="JSONL file for the balanced records"),
):
    """Balance training data for data.group_attribute: counterfactual copies (data.balance.counterfactual), then
    reweighting (weights in meta.weight) or stratified resampling (data.balance.strategy); prints the cell counts."""
    from .. import data
    from ..core.files import write_jsonl
    from ..data.balance import balance as balance_records
    from ..data.records import to_row

    cfg = common.config(args)
    dataset = data.load(data_path, cfg.data.format)
    records, report = balance_records(dataset.records, cfg.data.balance, cfg.data.group_attribute, cfg.run.seed)
    write_jsonl(Path(out), map(to_row, records))
    console.print_json(data=report)
