"""The `deftune screen` and `deftune safety` commands (registered by deftune.cli): parse, call, print."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

console = Console()
err_console = Console(stderr=True)


def _config(config: str | None, overrides: list[str] | None):
    from .. import config as config_mod

    return config_mod.load(config, overrides or [])


def screen_command(
        texts: str = typer.Argument(..., metavar="TEXTS", help="JSONL with a 'text' field (.jsonl), or plain text "
                                                               "with one item per line"),
        overrides: Optional[list[str]] = typer.Argument(None, metavar="KEY=VALUE", show_default=False,
                                                        help="config overrides, e.g. safety.classifier_threshold=0.7"),
        out: Optional[str] = typer.Option(None, "--out", "-o", help="write the verdicts here (default: stdout)"),
        config: Optional[str] = typer.Option(None, "--config", "-c", help="YAML config (its safety section)")):
    """Screen texts (prompts, model outputs, training data): one JSON verdict per item with `flagged`,
    `categories`, the `rules` that fired and the `redacted` text."""
    from .screen import Screen, read_texts

    cfg = _config(config, overrides)
    items = read_texts(texts)
    verdicts = Screen(cfg.safety)([text for _, text in items])
    lines = [json.dumps({"id": id_, **v.to_json()}, ensure_ascii=False) + "\n" for (id_, _), v in zip(items, verdicts)]
    if out:
        from ..core.files import write_atomic

        write_atomic(Path(out), "".join(lines))
        flagged = sum(v.flagged for v in verdicts)
        err_console.print(f"{flagged} of {len(verdicts)} items flagged; verdicts in {out}", highlight=False)
    else:
        sys.stdout.writelines(lines)


def safety_command(
        target: str = typer.Argument(..., metavar="RUN_OR_MODEL",
                                     help="a run folder (base vs fine-tuned side by side) or a model spec"),
        overrides: Optional[list[str]] = typer.Argument(None, metavar="KEY=VALUE", show_default=False,
                                                        help="config overrides, e.g. safety.bias_examples=100"),
        config: Optional[str] = typer.Option(None, "--config", "-c",
                                             help="YAML config; for a run only its safety section applies"),

        overwrite: bool = typer.Option(False, "--overwrite", help="replace an earlier safety/ in the run folder"),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress output")):
    """Bias benchmarks (CrowS-Pairs, StereoSet, BBQ, WinoBias), the content screens' recall and false-positive
    rate, PII redaction and over-refusal, written to safety.json (<run>/safety/ for a run folder)."""
    from ..cli import _quiet
    from .stage import headline, safety

    _quiet(quiet)
    cfg = _config(config, overrides) if (config or overrides) else None
    result = safety(target, cfg=cfg, overwrite=overwrite)
    table = Table(title="safety (95% CI)")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for name, value in headline(result):
        table.add_row(name, value)
    console.print(table)
    console.print(f"[bold green]results in[/] {Path(result.out_dir) / 'safety.json'} ({result.seconds:.0f} s)")


def balance_command(
        data_path: str = typer.Argument(..., metavar="DATA", help="training data file or folder"),
        overrides: Optional[list[str]] = typer.Argument(None, metavar="KEY=VALUE", show_default=False,
                                                        help="config overrides, e.g. data.balance.strategy=reweight"),
        out: str = typer.Option(..., "--out", "-o", help="JSONL file for the balanced records"),
        config: Optional[str] = typer.Option(None, "--config", "-c", help="YAML config (its safety section)")):
    """Balance training data for data.group_attribute: counterfactual copies (data.balance.counterfactual), then
    reweighting (weights in meta.weight) or stratified resampling (data.balance.strategy); prints the cell counts."""
    from .. import data
    from ..core.files import write_jsonl
    from ..data.records import to_row
    from ..data.balance import balance

    cfg = _config(config, overrides)
    dataset = data.load(data_path, cfg.data.format)
    records, report = balance(dataset.records, cfg.data.balance, cfg.data.group_attribute, cfg.run.seed)
    write_jsonl(Path(out), map(to_row, records))
    console.print_json(data=report)


def dpo_command(
        pairs: str = typer.Argument(..., metavar="PAIRS", help="JSONL preference file: prompt, chosen, rejected"),
        args: Optional[list[str]] = typer.Argument(None, help="an optional YAML config file, then key=value "
                                                              "overrides (e.g. dpo.beta=0.2)",
                                                   show_default=False),
        max_steps: int = typer.Option(-1, "--max-steps", help="stop after this many steps (-1: dpo.epochs)"),
        overwrite: bool = typer.Option(False, "--overwrite", help="replace an earlier dpo/ in the run folder"),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress output")):
    """Preference-tune model.spec with DPO (TRL's DPOTrainer) on PAIRS; writes the adapter (or model) and
    dpo.json (losses, reward margins, over-refusal before and after) to <run>/dpo/."""
    from ..cli import _config as cli_config
    from ..cli import _quiet
    from .preference import run_dpo

    cfg = cli_config(args)
    _quiet(quiet)
    report = run_dpo(cfg, pairs, overwrite=overwrite, quiet=quiet, max_steps=max_steps)
    o = report["over_refusal"]
    console.print(f"DPO: {report['steps']} steps on {report['pairs']} pairs, loss {report['loss'][0]:.3f} → "
                  f"{report['loss'][-1]:.3f}; chosen-rejected margin {report['mean_margin']['before']:.2f} → "
                  f"{report['mean_margin']['after']:.2f} nats; over-refusal {100 * o['before']['value']:.0f}% → "
                  f"{100 * o['after']['value']:.0f}%")
    console.print(f"[bold green]results in[/] {report['output']}")


def pairs_command(
        prompts: str = typer.Argument(..., metavar="PROMPTS", help="prompts (JSONL with 'text', or one per line)"),
        overrides: Optional[list[str]] = typer.Argument(None, metavar="KEY=VALUE", show_default=False,
                                                        help="config overrides, e.g. safety.refusal='No.'"),
        out: str = typer.Option(..., "--out", "-o", help="JSONL preference file to write"),
        model: Optional[str] = typer.Option(None, "--model", "-m", help="model spec answering (default model.spec)"),
        config: Optional[str] = typer.Option(None, "--config", "-c", help="YAML config (model, safety)"),
        helpful: bool = typer.Option(True, "--helpful/--no-helpful",
                                     help="also pair clean answers to safe prompts against the refusal (against "
                                          "over-refusal)")):
    """Answer PROMPTS with the model, screen the answers and write preference pairs: blocked answers rejected in
    favour of the refusal message, answers leaking personal data in favour of their redacted form."""
    from ..cli import _quiet
    from ..core import models
    from ..core.inference import DecodingSettings, generate
    from ..core.precision import choose as choose_precision
    from .guard import chat_prompt
    from .preference import build_pairs, write_pairs
    from .screen import Screen, read_texts

    cfg = _config(config, (overrides or []) + ([f"model.spec={model}"] if model else []))
    _quiet(True)
    texts = [t for _, t in read_texts(prompts)]
    lm, tokenizer = models.load(cfg.model.spec, dtype=cfg.model.dtype, revision=cfg.model.revision,
                                trust_remote_code=cfg.model.trust_remote_code)
    with choose_precision(cfg.model.precision).autocast():
        answers = generate(lm, tokenizer, [chat_prompt(tokenizer, t) for t in texts],
                           DecodingSettings(max_new_tokens=64, batch_size=cfg.safety.batch_size))
    found = build_pairs(texts, answers, Screen(cfg.safety), cfg.safety.refusal, helpful=helpful)
    write_pairs(out, found)
    console.print(f"{len(found)} pairs from {len(texts)} prompts written to {out}")
