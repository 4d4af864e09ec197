"""`run` and `report`: where a run's folder goes, its seed; report settings."""

from __future__ import annotations

from pydantic import Field

from .base import Section


class ReportConfig(Section):
    """Report settings are added with the report stage."""


class RunConfig(Section):
    name: str | None = Field(None, description="run folder name (default: <stage>-<timestamp>)")
    root: str = "runs"
    seed: int = 42
