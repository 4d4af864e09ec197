"""What every command shares: the consoles, the one grammar's `[CONFIG] [key=value ...]` arguments and how they
become a config, the shared options and logging quietness."""

from __future__ import annotations

import logging
import os

import typer
from rich.console import Console

from .. import config as config_mod
from ..errors import ConfigError

console = Console()
err_console = Console(stderr=True)

GRAMMAR = "deftune COMMAND [INPUT] [CONFIG] [key=value ...] [--flags]"
ARGS_HELP = "An optional YAML config file, then key=value overrides (e.g. training.learning_rate=1e-4)."
ARGS = typer.Argument(None, metavar="CONFIG|KEY=VALUE", help=ARGS_HELP, show_default=False)
QUIET = typer.Option(False, "--quiet", "-q", help="no progress output")


def overwrite(stage: str):
    """The `--overwrite` option of a command that writes <run>/`stage`/."""
    return typer.Option(False, "--overwrite", help=f"replace an earlier {stage}/ in the run folder")


def config(args: list[str] | None) -> config_mod.Config:
    """The config `[CONFIG] [key=value ...]` names: at most one argument without "=" (a YAML file), the rest
    overrides; no arguments: the defaults (the demo)."""
    paths = [a for a in args or [] if "=" not in a]
    overrides = [a for a in args or [] if "=" in a]
    if len(paths) > 1:
        raise ConfigError(f"expected at most one config file, got {', '.join(paths)} (overrides need key=value)")
    return config_mod.load(paths[0] if paths else None, overrides)


def quiet(on: bool) -> None:
    """Log at INFO (WARNING when `on`, with progress bars off); transformers' own logging only on errors."""
    import transformers

    logging.basicConfig(level=logging.WARNING if on else logging.INFO, format="%(message)s")
    transformers.logging.set_verbosity_error()
    if on:
        os.environ["TQDM_DISABLE"] = "1"
        transformers.logging.disable_progress_bar()
