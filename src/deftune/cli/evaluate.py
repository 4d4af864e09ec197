"""`deftune evaluate RUN_OR_MODEL [CONFIG] [key=value ...] [--data FILE] [--review FILE ...]`: evaluate, print the
headline table."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from ..core.files import write_json
from . import common
from .common import console


def _figure(interval: dict | None) -> str:
    if not interval or interval.get("value") is None:
        return "-"
    scale = 100 if interval["unit"] == "share" else 1
    low, high = (f"{scale * interval[k]:.1f}" if interval[k] is not None else "?" for k in ("low", "high"))
    return f"{scale * interval['value']:.1f} [{low}, {high}]"


def _difference(paired: dict | None) -> str:
    if not paired or paired.get("difference") is None:
        return "-"
    scale = 100 if paired["unit"] == "share" else 1
    return f"{scale * paired['difference']:+.1f} (p={paired['p_value']:.3f})"


def _print(result, report: dict) -> None:
    table = Table(title=f"{report['task']} on {report['examples']} examples (shares in %, 95% CI)")
    table.add_column("metric")
    for name in result.systems:
        table.add_column(name, justify="right")
    if result.comparison:
        table.add_column("difference", justify="right")
    first = result.metrics[result.systems[0]]
    for group, found in first.items():
        for metric in found:
            row = [f"{metric} ({group})"] + [_figure(result.metrics[n][group][metric]) for n in result.systems]
            if result.comparison:
                row.append(_difference(result.comparison[group][metric]))
            table.add_row(*row)
    console.print(table)
    last = result.systems[-1]
    for s in report["slices"][last][:3]:
        console.print(f"  worst slice ({last}): {s['field']}={s['value']} n={s['n']} score {_figure(s['score'])}")
    categories = report["errors"][last]["categories"]
    console.print(f"  errors ({last}): " + (", ".join(f"{c} {v['count']}" for c, v in categories.items()) or "none"))
    if report["stress"]:
        inv = report["stress"]["invariance"][last]
        console.print(
            f"  stress ({last}): accuracy {_figure(inv['accuracy'])}, worst case "
            f"{_figure(inv['worst_case_accuracy'])}; candidates: {report['stress']['candidates']['records']}"
        )
    if result.retention:
        pooled = result.retention["metrics"].get("all", {})
        if "drop" in pooled:
            console.print(f"  retention: accuracy drop {_figure(pooled['drop'])} percentage points")
    console.print(f"[bold green]results in[/] {Path(result.out_dir) / 'eval.json'} ({result.seconds:.0f} s)")


def evaluate(
    target: str = typer.Argument(
        ..., metavar="RUN_OR_MODEL", help="a run folder (base vs fine-tuned side by side) or a model spec"
    ),
    args: list[str] | None = common.ARGS,
    data: str | None = typer.Option(
        None, "--data", help="records to evaluate on (default: the run's test split, or the config's for a model spec)"
    ),
    review: list[str] | None = typer.Option(
        None, "--review", help="import reviewed error files (review.csv/jsonl filled in) instead"
    ),
    overwrite: bool = common.overwrite("evaluate"),
    quiet: bool = common.QUIET,
):
    """Evaluate a fine-tuned run against its base model (or one model): metrics with CIs, slices, errors, stress
    suites and retention, written to <run>/evaluate/eval.json. For a run folder only the config's evaluation
    section applies."""
    from ..evaluate import errors, runner

    common.quiet(quiet)
    if review:
        found = errors.import_review(review)
        if (Path(target) / "evaluate").is_dir():
            write_json(Path(target) / "evaluate" / "review_import.json", found)
        console.print_json(data=found)
        return
    cfg = common.config(args) if args else None
    result = runner.evaluate(target, data_path=data, cfg=cfg, overwrite=overwrite)
    _print(result, json.loads((Path(result.out_dir) / "eval.json").read_text(encoding="utf-8")))
