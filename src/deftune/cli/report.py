"""`deftune report RUN`: rebuild a run's report; it reads the run's artifacts, so it takes no config."""

from __future__ import annotations

import typer

from .common import console


def report(run: str = typer.Argument(..., metavar="RUN", help="run folder")):
    """Rebuild RUN/report.html from the run's artifacts alone."""
    from ..report import build

    console.print(f"report: {build(run)}")
