"""`deftune audit DATA [key=value ...] [--eval EVAL] [--config C] [--fail-on error|warning]`: audit a dataset with
the configured model's tokenizer, write <run>/audit/audit.json and figures, print the findings, and exit 1 when
a finding reaches --fail-on (for CI)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:  # the checks import scikit-learn and friends: only when the command runs
    from . import AuditResult

console = Console()
STYLES = {"error": "bold red", "warning": "yellow", "info": "dim"}


class FailOn(str, Enum):
    error = "error"
    warning = "warning"


def summarise(result: AuditResult, out_dir: Path) -> None:
    table = Table(title=f"audit of {result.records['train']} training records"
                        + (f" and {result.records['eval']} eval records" if result.records["eval"] else ""),
                  show_lines=True)
    for column in ("severity", "check", "finding"):
        table.add_column(column)
    for finding in result.findings:
        table.add_row(f"[{STYLES[finding.severity]}]{finding.severity}[/]", finding.check, escape(finding.message))
    if result.findings:
        console.print(table)
    counts = ", ".join(f"{n} {severity}" for severity, n in reversed(result.counts().items()))
    console.print(f"findings: {counts}; written to {out_dir / 'audit.json'}", highlight=False)


def audit_command(
        data_path: str = typer.Argument(..., metavar="DATA", help="training data file, folder or embedded:NAME"),
        overrides: Optional[list[str]] = typer.Argument(None, metavar="KEY=VALUE", show_default=False,
                                                        help="config overrides, e.g. data.audit.topics=5"),
        eval_path: Optional[str] = typer.Option(None, "--eval", help="eval/target data: coverage gaps and train/eval "
                                                                     "overlap are checked against it"),
        config: Optional[str] = typer.Option(None, "--config", "-c", help="YAML config (model, data, data.audit)"),
        fail_on: Optional[FailOn] = typer.Option(None, "--fail-on", help="exit with 1 when a finding is this severe"),
        overwrite: bool = typer.Option(False, "--overwrite", help="replace an earlier audit/ in the run folder"),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress output")):
    """Audit a dataset before training: shape, masking, duplicates and train/eval overlap, topics, style, label
    agreement and likely label errors, group representation."""
    from ... import config as config_mod
    from ... import data
    from ...core import models, runs
    from . import audit

    cfg = config_mod.load(config, overrides or [])
    cfg.data.path = data_path
    train = data.load(data_path, cfg.data.format)
    evals = data.load(eval_path, train.format) if eval_path else None
    tokenizer = models.load_tokenizer(models.resolve(cfg.model.spec), revision=cfg.model.revision,
                                      trust_remote_code=cfg.model.trust_remote_code)
    renderer = data.renderer_for(tokenizer, cfg.data, train, *([evals] if evals else []))
    out_dir = runs.prepare(cfg, "audit", overwrite=overwrite) / "audit"
    result = audit(train, eval=evals, tokenizer=tokenizer, renderer=renderer, cfg=cfg.data.audit, out_dir=out_dir,
                   seed=cfg.run.seed, quiet=quiet)
    summarise(result, out_dir)
    if fail_on is not None and result.fails(fail_on.value):
        raise typer.Exit(1)
