"""The `deftune` command: a thin shell that parses, calls the library, prints, and sets the exit code.
User errors print one line and exit 2."""

from __future__ import annotations

import logging
import os
import sys
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape

from . import config as config_mod
from .errors import ConfigError, DeftuneError

app = typer.Typer(help="Careful fine-tuning of large language models.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
console = Console()
err_console = Console(stderr=True)

ARGS_HELP = "An optional YAML config file, then key=value overrides (e.g. training.learning_rate=1e-4)."


def _config(args: list[str] | None) -> config_mod.Config:
    paths = [a for a in args or [] if "=" not in a]
    overrides = [a for a in args or [] if "=" in a]
    if len(paths) > 1:
        raise ConfigError(f"expected at most one config file, got {', '.join(paths)} (overrides need key=value)")
    return config_mod.load(paths[0] if paths else None, overrides)


def _quiet(quiet: bool) -> None:
    import transformers

    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(message)s")
    transformers.logging.set_verbosity_error()
    if quiet:
        os.environ["TQDM_DISABLE"] = "1"
        transformers.logging.disable_progress_bar()


@app.command()
def train(args: Optional[list[str]] = typer.Argument(None, help=ARGS_HELP, show_default=False),
          overwrite: bool = typer.Option(False, "--overwrite", help="replace an earlier train/ in the run folder"),
          resume: bool = typer.Option(False, "--resume", help="continue run.name from its last checkpoint"),
          quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress output")):
    """Fine-tune a model. With no arguments: the embedded SmolLM2-135M-Instruct on the BBC News demo."""
    from .train import recipe

    cfg = _config(args)
    _quiet(quiet)
    result = recipe.train(cfg, overwrite=overwrite, resume=resume, quiet=quiet)
    console.print(f"[bold green]run landed in[/] {result.run_dir}")
    console.print(f"  {result.method} output: {result.output_dir}")
    console.print(f"  examples: {result.examples['train']} train, {result.examples['validation']} validation "
                  f"(dropped as too long: {result.dropped_too_long['train']}); max length {result.max_length} "
                  f"tokens; {result.epochs:g} epoch(s), {result.steps} steps")
    console.print(f"  trainable parameters: {int(result.parameters['trainable']):,} of "
                  f"{int(result.parameters['total']):,} ({100 * result.parameters['trainable_share']:.2f}%)")
    loss = "  loss: -" if result.first_loss is None else f"  loss {result.first_loss:.3f} → {result.last_loss:.3f}"
    if result.validation_loss is not None:
        loss += f"; validation loss {result.validation_loss:.3f}"
    console.print(f"{loss}; {result.seconds:.0f} s")
    if result.early_stopping.get("best_step") is not None:
        console.print(f"  best composite validation score {result.early_stopping['best_composite']:.4f} at step "
                      f"{result.early_stopping['best_step']} (restored); weights {result.early_stopping['weights']}")


@app.command("run")
def run_pipeline(args: Optional[list[str]] = typer.Argument(None, help=ARGS_HELP, show_default=False),
                 start: Optional[str] = typer.Option(None, "--from", help="re-run from this stage on (audit, plan, "
                                                                          "train, evaluate, safety, report)"),
                 quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress output")):
    """The whole careful process into one run folder: audit, plan, train (augmenting first when enabled),
    evaluate, safety, report.
    Stages whose inputs did not change are skipped. With no arguments: the demo."""
    from rich.table import Table

    from . import pipeline

    cfg = _config(args)
    _quiet(quiet)
    run_dir, outcomes = pipeline.run(cfg, start=start, announce=console.print,
                                     progress=(lambda _: None) if quiet else lambda s: console.rule(f"stage: {s}"))
    table = Table(title=f"deftune run: {run_dir}")
    for column in ("stage", "status", "seconds", "artifact"):
        table.add_column(column, justify="right" if column == "seconds" else "left")
    for o in outcomes:
        table.add_row(o.stage, o.status, f"{o.seconds:.0f}" if o.status == "ran" else "", o.artifact or "")
    console.print(table)
    console.print(f"[bold green]report:[/] {run_dir / 'report.html'}")


@app.command()
def report(run: str = typer.Argument(..., help="run folder")):
    """Rebuild RUN/report.html from the run's artifacts alone."""
    from .report import build

    console.print(f"report: {build(run)}")


@app.command()
def export(run: str = typer.Argument(..., help="run folder"),
           merge: bool = typer.Option(False, "--merge", help="fold the adapter into the base model"),
           out: Optional[str] = typer.Option(None, "--out", help="target folder (default: RUN/export/...)")):
    """Export a run's result: the adapter in PEFT format, or with --merge one full model."""
    from .train.export import export as export_run

    _quiet(True)
    console.print(f"exported to {export_run(run, merge=merge, out=out)}")


@app.command()
def inspect(data_path: str = typer.Argument(..., metavar="DATA", help="data file, folder or embedded:NAME"),
            config: Optional[str] = typer.Option(None, "--config", "-c", help="YAML config (model, data options)"),
            model: Optional[str] = typer.Option(None, "--model", "-m", help="model spec whose tokenizer renders"),
            n: int = typer.Option(3, "-n", help="how many examples to show"),
            fmt: str = typer.Option("auto", "--format", help="record format (auto, chat, completion, text, "
                                                             "classification)")):
    """Show how examples are rendered: trained tokens in green, masked tokens dimmed."""
    from . import data
    from .core import models
    from .data.inspect import show

    overrides = [f"data.path={data_path}", f"data.format={fmt}"] + ([f"model.spec={model}"] if model else [])
    cfg = config_mod.load(config, overrides)
    _quiet(True)
    dataset = data.load(cfg.data.path, cfg.data.format)
    resolved = models.resolve(cfg.model.spec)
    tokenizer = models.load_tokenizer(resolved, revision=cfg.model.revision,
                                      trust_remote_code=cfg.model.trust_remote_code)
    renderer = data.renderer_for(tokenizer, cfg.data, dataset)
    show(console, renderer, dataset.records[:n])


from .data.audit.command import audit_command  # noqa: E402  (light: the checks load when the command runs)

app.command("audit")(audit_command)

from .data.augment.command import augment_command  # noqa: E402  (light: models load when the command runs)

app.command("augment")(augment_command)

from .evaluate.command import evaluate_command  # noqa: E402

app.command("evaluate")(evaluate_command)

from .plan.command import plan_command  # noqa: E402

app.command("plan")(plan_command)

from .sweep.command import sweep_command  # noqa: E402  (light: Optuna loads when the command runs)

app.command("sweep")(sweep_command)

from .safety.command import (
    balance_command,
    dpo_command,
    pairs_command,
    safety_command,
    screen_command,
)

app.command("screen")(screen_command)
app.command("safety")(safety_command)
app.command("balance")(balance_command)
app.command("pairs")(pairs_command)
app.command("dpo")(dpo_command)


def main() -> None:
    try:
        app()
    except DeftuneError as exc:
        # the message is the user's text (file names, field names such as :label:): no markup, no emoji codes
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True, emoji=False)
        sys.exit(2)
