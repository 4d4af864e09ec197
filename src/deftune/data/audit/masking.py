"""Masking: the rendering self-check over the whole training set, aggregated instead of stopping at the first
failure — the share of tokens trained on, and the examples that train on zero tokens or fail the check."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ...errors import DataError
from ..records import Record
from ..render import IGNORE, Renderer
from .findings import CheckResult, Finding, distribution, mention, pct

if TYPE_CHECKING:
    from .context import Context

ZERO_TRAINED = "example trains on zero tokens"


@dataclass
class Rendering:
    """Token counts per record (zeros where rendering failed) and the failures' messages."""

    total: np.ndarray
    trained: np.ndarray
    beyond: np.ndarray  # tokens past max_length
    trained_beyond: np.ndarray  # trained tokens past max_length
    errors: dict[int, str]  # record position -> self-check message

    @property
    def ok(self) -> np.ndarray:
        ok = np.ones(len(self.total), dtype=bool)
        ok[list(self.errors)] = False
        return ok


def render_pass(records: list[Record], renderer: Renderer) -> Rendering:
    n = len(records)
    total, trained, beyond, trained_beyond = (np.zeros(n, dtype=np.int64) for _ in range(4))
    limit = renderer.max_length or np.iinfo(np.int64).max
    errors: dict[int, str] = {}
    for i, record in enumerate(records):
        try:
            labels = np.asarray(renderer.render(record).labels)
        except DataError as exc:
            errors[i] = exc.message
            continue
        mask = labels != IGNORE
        total[i], trained[i] = len(labels), mask.sum()
        beyond[i], trained_beyond[i] = max(len(labels) - limit, 0), mask[limit:].sum()
    return Rendering(total, trained, beyond, trained_beyond, errors)


def run(ctx: Context) -> CheckResult:
    rendering, ids = ctx.rendering, ctx.train.ids
    ok = rendering.ok
    total, trained = int(rendering.total.sum()), int(rendering.trained.sum())
    by_problem: dict[str, list[str]] = defaultdict(list)
    for i, message in rendering.errors.items():
        by_problem[message.split(": ")[0]].append(ids[i])
    data = {
        "examples": len(ids),
        "passed": int(ok.sum()),
        "failed": len(rendering.errors),
        "tokens": {"unit": "tokens", "total": total, "trained": trained},
        "trained_share": trained / total if total else None,
        "trained_share_per_example": distribution(
            rendering.trained[ok] / np.maximum(rendering.total[ok], 1), "share of the example's tokens"
        ),
        "problems": {
            problem: {"count": len(found), "ids": found[: ctx.cfg.max_ids]} for problem, found in by_problem.items()
        },
    }
    findings = []
    for problem, found in by_problem.items():
        zero = problem.startswith(ZERO_TRAINED)
        what = (
            "train on zero tokens (empty or fully masked answers)"
            if zero
            else f"fail the masking self-check ({problem})"
        )
        findings.append(
            Finding(
                "masking",
                "error",
                "zero-trained" if zero else "masking-error",
                f"{len(found)} examples ({pct(len(found) / len(ids))}) {what}: {mention(found)}",
                found,
            )
        )
    return CheckResult(data, findings)
