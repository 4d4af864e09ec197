"""`deftune dpo PAIRS [CONFIG] [key=value ...] [--max-steps N]`: preference tuning, then its losses and margins."""

from __future__ import annotations

import typer

from . import common
from .common import console


def dpo(
    pairs: str = typer.Argument(..., metavar="PAIRS", help="JSONL preference file: prompt, chosen, rejected"),
    args: list[str] | None = common.ARGS,
    max_steps: int = typer.Option(-1, "--max-steps", help="stop after this many steps (-1: dpo.epochs)"),
    overwrite: bool = common.overwrite("dpo"),
    quiet: bool = common.QUIET,
):
    """Preference-tune model.spec with DPO (TRL's DPOTrainer) on PAIRS; writes the adapter (or model) and
    dpo.json (losses, reward margins, over-refusal before and after) to <run>/dpo/."""
    from ..safety.preference import run_dpo

    cfg = common.config(args)
    common.quiet(quiet)
    report = run_dpo(cfg, pairs, overwrite=overwrite, quiet=quiet, max_steps=max_steps)
    o = report["over_refusal"]
    console.print(
        f"DPO: {report['steps']} steps on {report['pairs']} pairs, loss {report['loss'][0]:.3f} → "
        f"{report['loss'][-1]:.3f}; chosen-rejected margin {report['mean_margin']['before']:.2f} → "
        f"{report['mean_margin']['after']:.2f} nats; over-refusal {100 * o['before']['value']:.0f}% → "
        f"{100 * o['after']['value']:.0f}%"
    )
    console.print(f"[bold green]results in[/] {report['output']}")
