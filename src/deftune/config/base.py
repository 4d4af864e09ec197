"""Helpers every section module shares: the strict section base and duration parsing."""

from __future__ import annotations

import re

from ..settings import Section

__all__ = ["DURATION", "Section", "parse_duration"]

DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$")


def parse_duration(text: str) -> float:
    """Seconds in '90s', '20m', '2h', '1h30m' (a bare number is seconds); ValueError otherwise."""
    compact = re.sub(r"\s+", "", str(text).lower())
    if re.fullmatch(r"\d+(\.\d+)?", compact):
        return float(compact)
    match = DURATION.fullmatch(compact)
    if not compact or not match or not any(match.groups()):
        raise ValueError(f"expected a duration such as 90s, 20m, 2h or 1h30m, got {text!r}")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds
