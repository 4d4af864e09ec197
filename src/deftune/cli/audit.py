"""`deftune audit DATA [CONFIG] [key=value ...] [--eval EVAL] [--fail-on error|warning]`: audit a dataset with the
configured model's tokenizer, write <run>/audit/audit.json and figures, print the findings, and exit 1 when a
finding reaches --fail-on (for CI)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from . import common
from .common import console

if TYPE_CHECKING:  # the checks import scikit-learn and friends: only when the command runs
    from ..data.audit import AuditResult

STYLES = {"error": "bold red", "warning": "yellow", "info": "dim"}


class FailOn(StrEnum):
    error = "error"
    warning = "warning"


def summarise(result: AuditResult, out_dir: Path) -> None:
    table = Table(
        title=f"audit of {result.records['train']} training records"
        + (f" and {result.records['eval']} eval records" if result.records["eval"] else ""),
        show_lines=True,
    )
    for column in ("severity", "check", "finding"):
        table.add_column(column)
    for finding in result.findings:
        table.add_row(f"[{STYLES[finding.severity]}]{finding.severity}[/]", finding.check, escape(finding.message))
    if result.findings:
        console.print(table)
    counts = ", ".join(f"{n} {severity}" for severity, n in reversed(result.counts().items()))
    console.print(f"findings: {counts}; written to {out_dir / 'audit.json'}", highlight=False)


def audit(
    data_path: str = typer.Argument(..., metavar="DATA", help="training data file, folder or embedded:NAME"),
    args: list[str] | None = common.ARGS,
    eval_path: str | None = typer.Option(
        None, "--eval", help="eval/target data: coverage gaps and train/eval overlap are checked against it"
    ),
    fail_on: FailOn | None = typer.Option(None, "--fail-on", help="exit with 1 when a finding is this severe"),
    overwrite: bool = common.overwrite("audit"),
    quiet: bool = common.QUIET,
):
    """Audit a dataset before training: shape, masking, duplicates and train/eval overlap, topics, style, label
    agreement and likely label errors, group representation."""
    from .. import data
    from ..core import models, runs
    from ..data.audit import audit as audit_data

    cfg = common.config(args)
    cfg.data.path = data_path
    train = data.load(data_path, cfg.data.format)
    evals = data.load(eval_path, train.format) if eval_path else None
    tokenizer = models.load_tokenizer(
        models.resolve(cfg.model.spec), revision=cfg.model.revision, trust_remote_code=cfg.model.trust_remote_code
    )
    renderer = data.renderer_for(tokenizer, cfg.data, train, *([evals] if evals else []))
    out_dir = runs.prepare(cfg, "audit", overwrite=overwrite) / "audit"
    result = audit_data(
        train,
        eval=evals,
        tokenizer=tokenizer,
        renderer=renderer,
        cfg=cfg.data.audit,
        out_dir=out_dir,
        seed=cfg.run.seed,
        quiet=quiet,
    )
    summarise(result, out_dir)
    if fail_on is not None and result.fails(fail_on.value):
        raise typer.Exit(1)
