"""The run's report: one self-contained report.html rebuilt from the artifacts alone."""

from __future__ import annotations

from pathlib import Path

from ..core.files import write_atomic
from ..errors import RunError
from .html import Artifacts, render


def build(run_dir: str | Path) -> Path:
    """Write <run>/report.html from what the stages left there; returns its path."""
    run = Path(run_dir)
    if not (run / "config.yaml").is_file():
        raise RunError(f"{run}: not a deftune run folder (no config.yaml)")
    path = run / "report.html"
    write_atomic(path, render(Artifacts.read(run)))
    return path


__all__ = ["build"]
