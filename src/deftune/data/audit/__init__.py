"""`deftune audit`: understand a dataset before training on it.

Each module checks one characteristic and returns JSON-ready data plus findings (severity, plain-language
message, record ids): shape, masking, duplicates and contamination, domain coverage, style, label agreement,
likely label errors and bias presence. `audit` runs them all and, given a folder, writes audit.json and plots.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.progress import Progress

from ...config import AuditConfig
from ...core.files import write_json
from ...errors import DataError
from ..records import Dataset
from ..render import Renderer
from .context import Context
from .findings import SEVERITIES, Finding, plain
from .texts import Texts

__all__ = ["AuditResult", "Finding", "audit"]

# One module per check, imported when an audit runs (they pull in scikit-learn, matplotlib and friends).
CHECKS = ("masking", "shape", "duplicates", "coverage", "style", "agreement", "labels", "bias")


@dataclass
class AuditResult:
    records: dict[str, int]
    format: str
    checks: dict[str, dict]
    findings: list[Finding]
    seconds: dict[str, float]
    figures: list[dict] = field(default_factory=list)
    max_ids: int = 200

    def worst(self) -> str | None:
        """The most severe finding's severity (None when there are no findings)."""
        return max((f.severity for f in self.findings), key=SEVERITIES.index, default=None)

    def fails(self, level: str) -> bool:
        """Whether any finding is at least as severe as `level` (info, warning or error)."""
        worst = self.worst()
        return worst is not None and SEVERITIES.index(worst) >= SEVERITIES.index(level)

    def counts(self) -> dict[str, int]:
        """How many findings there are of each severity."""
        return {s: sum(f.severity == s for f in self.findings) for s in SEVERITIES}

    def to_json(self) -> dict:
        """A JSON-ready dict (strict JSON: no NaN); finding ids are capped at `max_ids`, their counts are not."""
        return plain(
            {
                "records": self.records,
                "format": self.format,
                "summary": self.counts(),
                "findings": [f.to_json(self.max_ids) for f in self.findings],
                "checks": self.checks,
                "figures": self.figures,
                "seconds": self.seconds,
            }
        )


def audit(
    train: Dataset,
    *,
    eval: Dataset | None = None,
    tokenizer,
    renderer: Renderer,
    cfg: AuditConfig,
    out_dir: Path | None = None,
    seed: int = 42,
    quiet: bool = True,
) -> AuditResult:
    """Run every check on `train` (and train↔eval checks when `eval` is given). With `out_dir`, write
    audit.json and the figures there."""
    if not len(train):
        raise DataError("no training records to audit", file=train.source)
    if eval is not None and eval.format != train.format:
        raise DataError(f"eval data is {eval.format} but training data is {train.format}", file=eval.source)
    ctx = Context(
        Texts.of(train), Texts.of(eval) if eval is not None and len(eval) else None, tokenizer, renderer, cfg, seed
    )
    checks, findings, seconds = {}, [], {}
    with Progress(disable=quiet, transient=True) as progress:
        task = progress.add_task("audit", total=len(CHECKS))
        for name in CHECKS:
            progress.update(task, description=f"audit: {name}")
            start = time.perf_counter()
            outcome = importlib.import_module(f".{name}", __name__).run(ctx)
            seconds[name] = round(time.perf_counter() - start, 3)
            checks[name], findings = outcome.data, findings + outcome.findings
            progress.advance(task)
    findings.sort(key=lambda f: -SEVERITIES.index(f.severity))
    result = AuditResult(
        {"train": len(train), "eval": len(eval) if eval is not None else 0},
        train.format,
        checks,
        findings,
        seconds,
        max_ids=cfg.max_ids,
    )
    if out_dir is not None:
        from . import plots

        result.figures = plots.draw(plain(checks), Path(out_dir))
        write_json(Path(out_dir) / "audit.json", result.to_json())
    return result
