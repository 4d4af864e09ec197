"""`deftune train [CONFIG] [key=value ...] [--overwrite] [--resume]`: fine-tune and print where the run landed."""

from __future__ import annotations

import typer

from . import common
from .common import console


def train(
    args: list[str] | None = common.ARGS,
    overwrite: bool = common.overwrite("train"),
    resume: bool = typer.Option(False, "--resume", help="continue run.name from its last checkpoint"),
    quiet: bool = common.QUIET,
):
    """Fine-tune a model. With no arguments: the embedded SmolLM2-135M-Instruct on the BBC News demo."""
    from ..train import recipe

    cfg = common.config(args)
    common.quiet(quiet)
    result = recipe.train(cfg, overwrite=overwrite, resume=resume, quiet=quiet)
    console.print(f"[bold green]run landed in[/] {result.run_dir}")
    console.print(f"  {result.method} output: {result.output_dir}")
    console.print(
        f"  examples: {result.examples['train']} train, {result.examples['validation']} validation "
        f"(dropped as too long: {result.dropped_too_long['train']}); max length {result.max_length} "
        f"tokens; {result.epochs:g} epoch(s), {result.steps} steps"
    )
    console.print(
        f"  trainable parameters: {int(result.parameters['trainable']):,} of "
        f"{int(result.parameters['total']):,} ({100 * result.parameters['trainable_share']:.2f}%)"
    )
    loss = "  loss: -" if result.first_loss is None else f"  loss {result.first_loss:.3f} → {result.last_loss:.3f}"
    if result.validation_loss is not None:
        loss += f"; validation loss {result.validation_loss:.3f}"
    console.print(f"{loss}; {result.seconds:.0f} s")
    if result.early_stopping.get("best_step") is not None:
        console.print(
            f"  best composite validation score {result.early_stopping['best_composite']:.4f} at step "
            f"{result.early_stopping['best_step']} (restored); weights {result.early_stopping['weights']}"
        )
