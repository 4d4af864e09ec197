"""`deftune plan [CONFIG] [key=value ...] [--compare] [--measure] [--steps N]`: memory and compute before training;
writes <run>/plan/plan.json and prints a table (and, with --compare, the seed guide's claims checked)."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from ..core.files import write_json
from . import common
from .common import console

if TYPE_CHECKING:  # the plan loads models (transformers): only when the command runs
    from ..plan.compare import Plan, Row

MIB = 2**20
VERDICT_STYLES = {"holds": "green", "does not hold": "bold red"}


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value / MIB:,.0f}"


def _pct(value: float | None, signed: bool = False) -> str:
    return "-" if value is None else f"{value:+.1f}%" if signed else f"{value:.1f}%"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


MEASURED_COLUMNS = ["measured MiB", "error", "glibc default MiB", "error vs glibc"]


def _measured_cells(row: Row) -> list[str]:
    """Measured peak and the estimate's error, then the same under glibc's default allocator (CPU)."""
    failed = (row.measured or {}).get("error")
    if failed:
        return [escape(f"failed: {failed}"), "", "", ""]
    return [
        _mib(row.measured_peak),
        _pct(row.error_pct(), signed=True),
        _mib(row.glibc_peak),
        _pct(row.error_pct(row.glibc_peak), signed=True) if row.glibc_peak else "-",
    ]


def _single(result: Plan) -> Table:
    from ..plan.compare import label

    row = result.rows[0]
    est = row.estimate
    table = Table(
        title=escape(
            f"plan: {result.cfg.model.spec}, {label(est)}, {est.shape['rows']} × "
            f"{est.shape['seq_len']} tokens per micro-batch ({result.device})"
        )
    )
    table.add_column("")
    table.add_column("estimate", justify="right")
    for name, value in est.memory_bytes.items():
        table.add_row(f"{name.replace('_', ' ')} (MiB)", _mib(value))
    per_layer = est.activations_per_layer_bytes
    table.add_row("one decoder layer without checkpointing (MiB)", _mib(sum(per_layer.values())))
    for name, value in per_layer.items():
        table.add_row(f"  {name.replace('_', ' ')}", _mib(value))
    table.add_row(
        "trainable parameters",
        f"{est.parameters['trainable']:,.0f} of {est.parameters['total']:,.0f} "
        f"({100 * est.parameters['trainable_share']:.2f}%)",
    )
    table.add_row("tokens per step", f"{est.tokens_per_step:,}")
    table.add_row("FLOPs per step", f"{est.flops_per_step:.3g}")
    table.add_row("seconds per step (at the measured matmul speed)", _seconds(est.seconds_per_step))
    if row.measured:
        for name, cell in zip(MEASURED_COLUMNS, _measured_cells(row)):
            table.add_row(name.replace("MiB", "peak (MiB)"), cell)
        table.add_row("measured seconds per step", _seconds(row.measured.get("seconds_per_step")))
    return table


def _compare(result: Plan) -> Table:
    from ..plan.compare import label, savings

    measured = any(r.measured for r in result.rows)
    saved = savings(result.rows, measured=False)
    saved_measured = savings(result.rows, measured=True) if measured else {}
    first = result.rows[0].estimate
    table = Table(
        title=escape(
            f"plan --compare: {result.cfg.model.spec}, {first.shape['rows']} × "
            f"{first.shape['seq_len']} tokens per micro-batch ({result.device})"
        )
    )
    columns = ["configuration", "params modified", "estimate MiB", "savings (est.)"]
    if measured:
        columns += [*MEASURED_COLUMNS, "savings (measured)", "s/step (est.)", "s/step (measured)"]
    for column in columns:
        table.add_column(column, justify="left" if column == "configuration" else "right")
    for i, row in enumerate(result.rows):
        est = row.estimate
        cells = [label(est), f"{100 * est.parameters['trainable_share']:.2f}%", _mib(est.peak_bytes), _pct(saved[i])]
        if measured:
            cells += [
                *_measured_cells(row),
                _pct(saved_measured.get(i)),
                _seconds(est.seconds_per_step),
                _seconds((row.measured or {}).get("seconds_per_step")),
            ]
        table.add_row(*cells)
    return table


def _claims(result: Plan) -> Table:
    from ..plan.compare import seed_claims

    table = Table(title="the seed guide's efficiency claims")
    for column in ("claim", "here", "verdict", "basis"):
        table.add_column(column, justify="right" if column == "here" else "left")
    for claim in seed_claims(result.rows):
        style = VERDICT_STYLES[claim["verdict"]]
        table.add_row(
            escape(claim["claim"]),
            f"{claim['value_pct']:.1f}%",
            f"[{style}]{claim['verdict']}[/]",
            escape(claim["basis"]),
        )
    return table


def plan(
    args: list[str] | None = common.ARGS,
    compare: bool = typer.Option(
        False,
        "--compare",
        help="every method × fp32/bf16 × checkpointing off/on, set against the seed guide's efficiency table",
    ),
    measure: bool = typer.Option(
        False,
        "--measure",
        help="also run a few steps of each configuration, each in "
        "a fresh process, and record peak memory and step "
        "time",
    ),
    steps: int = typer.Option(3, "--steps", min=2, help="optimizer steps per measured configuration"),
    quiet: bool = common.QUIET,
):
    """Estimate memory and compute before training: parameters, weights, gradients, optimizer states, activations
    (per layer, with and without gradient checkpointing), FLOPs and time per step."""
    from ..core import runs
    from ..plan import compare as plan_compare

    cfg = common.config(args)
    common.quiet(quiet)
    run_dir = runs.prepare(cfg, "plan", overwrite=True)
    status = None if quiet else console.status("planning")
    with status or contextlib.nullcontext():
        result = plan_compare.make(
            cfg,
            compare=compare,
            measure_steps=steps if measure else 0,
            progress=(lambda text: status.update(escape(text))) if status else lambda _: None,
        )
    path = run_dir / "plan" / "plan.json"
    write_json(path, result.to_json())
    console.print(_compare(result) if compare else _single(result))
    if compare:
        console.print(_claims(result))
        console.print(escape(plan_compare.why(result.rows)), highlight=False)
    if result.baseline_bytes:
        console.print(
            f"Every peak includes the process baseline (Python, torch, transformers: "
            f"{_mib(result.baseline_bytes)} MiB); savings leave it out.",
            highlight=False,
        )
    if measure and result.device == "cpu":
        console.print(
            "Measured: peak resident memory of a fresh process per configuration, with freed memory "
            "returned to the system at once; 'glibc default' is the same run with glibc's allocator as "
            "is, whose heap keeps freed memory (and the step times).",
            highlight=False,
        )
    console.print(f"written to {escape(str(path))}", highlight=False)
