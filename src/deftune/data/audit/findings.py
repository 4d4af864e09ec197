"""What every check returns: JSON-ready data plus findings (severity, plain-language message, record ids)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

Severity = Literal["info", "warning", "error"]
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "error")


@dataclass
class Finding:
    check: str
    severity: Severity
    code: str  # a stable slug, e.g. "exact-duplicates"
    message: str
    ids: list[str] = field(default_factory=list)

    def to_json(self, max_ids: int) -> dict:
        return {
            "check": self.check,
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "count": len(self.ids),
            "ids": [str(i) for i in self.ids[:max_ids]],
        }


@dataclass
class CheckResult:
    data: dict[str, Any]
    findings: list[Finding] = field(default_factory=list)


def mention(ids, shown: int = 5) -> str:
    """A short inline list of ids for messages: 'a, b, c and 12 more'."""
    ids = [str(i) for i in ids]
    head = ", ".join(ids[:shown])
    return f"{head} and {len(ids) - shown} more" if len(ids) > shown else head


def pct(share: float) -> str:
    return f"{100 * share:.1f}%"


def distribution(values, unit: str, bins: int = 20) -> dict:
    """Summary statistics and a histogram of `values`, with their unit."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if not len(values):
        return {"unit": unit, "count": 0}
    q = np.percentile(values, [5, 25, 50, 75, 95])
    counts, edges = np.histogram(values, bins=bins)
    return {
        "unit": unit,
        "count": int(len(values)),
        "mean": float(values.mean()),
        "std": float(values.std()),
        "min": float(values.min()),
        "p5": q[0],
        "p25": q[1],
        "p50": q[2],
        "p75": q[3],
        "p95": q[4],
        "max": float(values.max()),
        "histogram": {"edges": edges.tolist(), "counts": counts.tolist()},
    }


def plain(value: Any) -> Any:
    """`value` with numpy scalars/arrays turned into Python types and NaN/inf into None (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
