"""Augmentation of training records: candidates from back-translation and paraphrasing, every filter run on every
candidate (so each filter's acceptance rate is reported on its own), then the caps: at most `max_per_example`
variants per source (the most similar first) and at most `max_share` of the augmented training set (sources taken
in turn, seeded order).

Only training records are varied: `augment_split` takes the train/validation/test split, varies train, and drops
every variant that is a near duplicate of a validation or test record, so variants never cross into evaluation.
The varied field is the input: `text` (classification, text), `prompt` (completion), or the last user turn before
the last assistant turn (chat); answers and labels are kept."""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ...config import Config
from ...core.files import write_json, write_jsonl
from ..records import Dataset, Record, to_row
from . import filters, paraphrase, translate
from .llm import LLM
from .llm import load as load_llm

log = logging.getLogger(__name__)

FILTER_ORDER = ("length_ratio", "novelty", "fluency", "similarity", "numbers", "entities", "label", "eval_overlap")


@dataclass
class Candidate:
    source: Record
    text: str
    provenance: dict  # method, engine, prompt_version, seed (+ pivot or style)


@dataclass
class AugmentResult:
    accepted: list[Record]
    rejected: list[dict] = field(default_factory=list)  # input-schema rows with the reasons under "rejected"
    summary: dict = field(default_factory=dict)


def _last_user_turn(messages: list[dict[str, str]]) -> int | None:
    last_answer = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
    users = [i for i, m in enumerate(messages[:last_answer]) if m["role"] == "user"]
    return users[-1] if users else None


def input_text(record: Record) -> str | None:
    """The text a variant rephrases (None: the record has nothing to vary)."""
    if record.format == "chat":
        turn = _last_user_turn(record.messages)
        return None if turn is None else record.messages[turn]["content"]
    return record.prompt if record.format == "completion" else record.text


def variant(candidate: Candidate, number: int) -> Record:
    """The source record with its input replaced, a new id, and the provenance under meta.augmentation."""
    source, text = candidate.source, candidate.text
    changes: dict = {
        "id": f"{source.id}~{candidate.provenance['method']}-{number}",
        "annotations": None,
        "meta": {**source.meta, "augmentation": candidate.provenance},
        "source": "",
    }
    if source.format == "chat":
        turn = _last_user_turn(source.messages)
        changes["messages"] = [dict(m, content=text) if i == turn else dict(m) for i, m in enumerate(source.messages)]
    else:
        changes["prompt" if source.format == "completion" else "text"] = text
    return replace(source, **changes)


class Engines:
    """The models augmentation uses, each loaded on first use (or given, e.g. by tests)."""

    def __init__(
        self,
        config: Config,
        *,
        llm: LLM | None = None,
        translator: translate.Translator | None = None,
        embedder: filters.Embedder | None = None,
    ):
        self.config, self._llm, self._translator, self._embedder = config, llm, translator, embedder

    def llm(self) -> LLM:
        if self._llm is None:
            spec = self.config.data.augment.model or self.config.model.spec
            log.info("augment: loading %s", spec)
            self._llm = load_llm(spec, self.config.model)
        return self._llm

    def translator(self) -> translate.Translator:
        if self._translator is None:
            self._translator = translate.build(self.config.data.augment, self.llm)
        return self._translator

    def embedder(self) -> filters.Embedder:
        if self._embedder is None:
            self._embedder = filters.Embedder()
        return self._embedder


def candidates(records: list[Record], config: Config, engines: Engines) -> list[Candidate]:
    """Back-translations and paraphrases of every record that has an input to vary."""
    cfg, seed = config.data.augment, config.run.seed
    sources = [r for r in records if input_text(r)]
    texts = [input_text(r) for r in sources]
    made: list[Candidate] = []
    if "backtranslation" in cfg.methods and sources:
        translator = engines.translator()
        log.info("augment: back-translating %d records with %s", len(sources), translator.engine)
        back = translate.back_translate(translator, texts, cfg.source_language, cfg.pivot_language)
        made += [
            Candidate(
                r,
                t,
                {
                    "source_id": r.id,
                    "method": "backtranslation",
                    "engine": translator.engine,
                    "prompt_version": translator.prompt_version,
                    "seed": seed,
                    "pivot": cfg.pivot_language,
                },
            )
            for r, t in zip(sources, back)
        ]
    if "paraphrase" in cfg.methods and sources:
        llm = engines.llm()
        log.info("augment: %d paraphrase candidates per record from %s", cfg.candidates, llm.spec)
        labels = [r.label if r.format == "classification" else None for r in sources]
        for r, options in zip(sources, paraphrase.paraphrase(llm, texts, labels, cfg, seed)):
            made += [
                Candidate(
                    r,
                    t,
                    {
                        "source_id": r.id,
                        "method": "paraphrase",
                        "engine": f"llm {llm.spec}",
                        "prompt_version": paraphrase.PROMPT_VERSION,
                        "seed": seed,
                        "style": paraphrase.style_of(k),
                    },
                )
                for k, t in enumerate(options)
            ]
    return made


def checks(
    made: list[Candidate], records: list[Record], evals: list[Record], config: Config, engines: Engines
) -> tuple[list[filters.Check], dict[str, str]]:
    """Every applicable filter on every candidate, and why the others were skipped."""
    cfg = config.data.augment
    sources, variants = [input_text(c.source) for c in made], [c.text for c in made]
    done = [
        filters.length_ratio(sources, variants, cfg.min_length_ratio, cfg.max_length_ratio),
        filters.novelty(sources, variants, cfg.max_chrf),
        filters.similarity(engines.embedder(), sources, variants, cfg.min_similarity),
        filters.entities_kept(sources, variants, cfg.min_entity_recall),
    ]
    ratios = None
    if cfg.max_perplexity_ratio is not None and made:
        llm = engines.llm()
        with llm.compute.autocast():
            ratios = filters.perplexity_ratios(llm.model, llm.tokenizer, sources, variants, cfg.batch_size)
    done.append(filters.fluency(sources, variants, ratios, cfg.max_perplexity_ratio))
    skipped = {}
    if cfg.numbers:
        done.append(filters.numbers_kept(sources, variants))
    else:
        skipped["numbers"] = "data.augment.numbers is off"
    labelled = [r for r in records if r.label is not None]
    if not cfg.label_agreement:
        skipped["label"] = "data.augment.label_agreement is off"
    elif len({r.label for r in labelled}) < 2:
        skipped["label"] = "not classification data with two or more labels"
    else:
        classifier = filters.LabelClassifier([r.text for r in labelled], [r.label for r in labelled], config.run.seed)
        done.append(filters.label_kept(classifier, variants, [c.source.label for c in made]))
    eval_texts = [(r.id, input_text(r)) for r in evals if input_text(r)]
    if eval_texts:
        done.append(
            filters.eval_distinct(
                variants, [t for _, t in eval_texts], [i for i, _ in eval_texts], config.data.audit, config.run.seed
            )
        )
    else:
        skipped["eval_overlap"] = "no evaluation records given"
    return sorted(done, key=lambda c: FILTER_ORDER.index(c.name)), skipped


def _caps(
    made: list[Candidate], passed: np.ndarray, similarity: list[float], n_train: int, config: Config
) -> tuple[list[int], dict[int, str], int]:
    """Indices kept after the caps, the cap that dropped each other passing candidate, and the share budget."""
    cfg = config.data.augment
    by_source: dict[str, list[int]] = {}
    for i in np.flatnonzero(passed):
        by_source.setdefault(made[i].source.id, []).append(int(i))
    dropped: dict[int, str] = {}
    ranked: list[tuple[int, int, int]] = []  # (rank within its source, source position, index)
    order = sorted(by_source)
    random.Random(config.run.seed).shuffle(order)
    for position, source in enumerate(order):
        best = sorted(by_source[source], key=lambda i: -similarity[i])
        ranked += [(rank, position, i) for rank, i in enumerate(best[: cfg.max_per_example])]
        dropped.update({i: "max_per_example" for i in best[cfg.max_per_example :]})
    budget = math.floor(cfg.max_share * n_train / (1 - cfg.max_share) + 1e-9)
    ranked.sort()
    dropped.update({i: "max_share" for *_, i in ranked[budget:]})
    return sorted(i for *_, i in ranked[:budget]), dropped, budget


def _rate(passed: int, checked: int) -> float | None:
    return round(passed / checked, 4) if checked else None


def augment(
    records: list[Record],
    config: Config,
    *,
    evals: Iterable[Record] = (),
    llm: LLM | None = None,
    translator: translate.Translator | None = None,
    embedder: filters.Embedder | None = None,
) -> AugmentResult:
    """Variants of `records` (training data) that pass every filter and the caps; `evals` are the records that no
    variant may nearly duplicate. Models not given are loaded from the config when needed."""
    evals = list(evals)
    engines = Engines(config, llm=llm, translator=translator, embedder=embedder)
    made = candidates(records, config, engines)
    done, skipped = checks(made, records, evals, config, engines)
    passed = np.logical_and.reduce([c.passed for c in done]) if made else np.zeros(0, dtype=bool)
    similarity = next(c.values for c in done if c.name == "similarity")
    kept, capped, budget = _caps(made, passed, similarity, len(records), config)
    seen: dict[str, int] = {}
    out = []
    for i, candidate in enumerate(made):
        candidate.provenance["checks"] = {c.name: c.values[i] for c in done}
        seen[candidate.source.id] = seen.get(candidate.source.id, 0) + 1
        out.append(variant(candidate, seen[candidate.source.id]))
    chosen = set(kept)
    rejected = [
        {**to_row(out[i]), "rejected": [c.reason(i) for c in done if not c.passed[i]] or [capped[i]]}
        for i in range(len(made))
        if i not in chosen
    ]
    accepted = [out[i] for i in kept]
    return AugmentResult(
        accepted, rejected, _summary(made, done, skipped, passed, capped, budget, records, evals, accepted, config)
    )


def _summary(made, done, skipped, passed, capped, budget, records, evals, accepted, config) -> dict:
    methods = {}
    for method in dict.fromkeys(c.provenance["method"] for c in made):
        mine = np.array([c.provenance["method"] == method for c in made])
        first = next(c for c in made if c.provenance["method"] == method)
        n = int(mine.sum())
        methods[method] = {
            "engine": first.provenance["engine"],
            "prompt_version": first.provenance["prompt_version"],
            "candidates": n,
            "sources": len({c.source.id for c, m in zip(made, mine) if m}),
            "filters": {
                c.name: {
                    "passed": int(c.passed[mine].sum()),
                    "checked": n,
                    "acceptance_rate": _rate(int(c.passed[mine].sum()), n),
                    "threshold": c.threshold,
                }
                for c in done
            },
            "passed_all_filters": int(passed[mine].sum()),
            "accepted": sum(r.meta["augmentation"]["method"] == method for r in accepted),
        }
        methods[method]["acceptance_rate"] = _rate(methods[method]["accepted"], n)
    caps = list(capped.values())
    return {
        "training_records": len(records),
        "eval_records": len(evals),
        "seed": config.run.seed,
        "candidates": len(made),
        "accepted": len(accepted),
        "rejected": len(made) - len(accepted),
        "augmented_share": _rate(len(accepted), len(records) + len(accepted)),
        "methods": methods,
        "skipped_filters": skipped,
        "caps": {
            "max_per_example": {"limit": config.data.augment.max_per_example, "dropped": caps.count("max_per_example")},
            "max_share": {
                "limit": config.data.augment.max_share,
                "budget_variants": budget,
                "dropped": caps.count("max_share"),
            },
        },
        "units": {"acceptance_rate": "share of candidates", "augmented_share": "share of the augmented training set"},
    }


def augment_split(parts: dict[str, Dataset], config: Config, **engines) -> tuple[dict[str, Dataset], AugmentResult]:
    """Augment the training part of a split (as `deftune.data.load_splits` returns it) only; variants near a
    validation or test record are dropped. Returns the parts with train extended, and the result."""
    train = parts["train"]
    evals = [r for name, part in parts.items() if name != "train" for r in part.records]
    result = augment(train.records, config, evals=evals, **engines)
    return {
        **parts,
        "train": Dataset(train.records + result.accepted, train.format, f"{train.source}+augmented"),
    }, result


def for_training(parts: dict[str, Dataset], config: Config, run_dir: str | Path, **engines) -> dict[str, Dataset]:
    """The training pipeline's hook, called right after the split: the parts unchanged unless
    data.augment.enabled, else with train augmented and the variants written to <run_dir>/augment/."""
    if not config.data.augment.enabled:
        return parts
    augmented, result = augment_split(parts, config, **engines)
    write(result, Path(run_dir) / "augment")
    log.info("augment: %d variants added to %d training records", len(result.accepted), len(parts["train"]))
    return augmented


def write(result: AugmentResult, out_dir: Path) -> dict[str, Path]:
    """accepted.jsonl (loadable as training data), rejected.jsonl (with reasons) and summary.json."""
    paths = {name: out_dir / name for name in ("accepted.jsonl", "rejected.jsonl", "summary.json")}
    for name, rows in (("accepted.jsonl", [to_row(r) for r in result.accepted]), ("rejected.jsonl", result.rejected)):
        write_jsonl(paths[name], rows)
    write_json(paths["summary.json"], result.summary)
    return paths
