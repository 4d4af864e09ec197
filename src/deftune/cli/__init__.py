"""The `deftune` command: a thin shell that parses, calls the library, prints, and sets the exit code.

One module per command, all with one grammar: `deftune COMMAND [INPUT] [CONFIG] [key=value ...] [--flags]`, the
config parsed by `common.config`. The command modules import only light modules (config, errors, typer, rich,
cli.common) at the top and the stages inside the command functions, so that `deftune --help` loads no model
library (torch, transformers, Optuna). User errors print one line and exit 2."""

from __future__ import annotations

import sys

import typer
from rich.markup import escape

from ..errors import DeftuneError
from . import (
    audit,
    augment,
    balance,
    dpo,
    evaluate,
    export,
    inspect,
    pairs,
    plan,
    report,
    run,
    safety,
    screen,
    sweep,
    train,
)
from .common import GRAMMAR, err_console

app = typer.Typer(
    help=f"Careful fine-tuning of large language models. Every command: {escape(GRAMMAR)}.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

for _module in (
    train,
    run,
    report,
    export,
    inspect,
    audit,
    augment,
    evaluate,
    plan,
    sweep,
    screen,
    safety,
    balance,
    pairs,
    dpo,
):
    _name = _module.__name__.rpartition(".")[2]
    app.command(_name)(getattr(_module, _name))


def main() -> None:
    try:
        app()
    except DeftuneError as exc:
        # the message is the user's text (file names, field names such as :label:): no markup, no emoji codes
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True, emoji=False)
        sys.exit(2)
