"""Hyperparameter search over the careful training run, with Optuna.

Each trial is one `train.recipe.train` run into <run>/sweep/trial-<n>/ with the sampled values set in the config.
The objective is the composite validation score that early stopping already watches (−loss + task metric −
retention drop, weights in training.early_stopping): the study is single-objective so that TPE and the median or
Hyperband pruners (which Optuna offers for one objective only) work on the score the user weighted. Task metric
and retention drop are kept per trial, and their Pareto front is computed from those records: the trade-off is
shown without training anything twice.

The study lives in SQLite inside the run (<run>/sweep/study.db) or at any SQLAlchemy URL; every worker started with
the same storage and study name joins it (Optuna's own distributed mode). Trials of a worker that died are marked
failed by Optuna's heartbeat check and re-queued once with the same values.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import socket
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import optuna
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from optuna.trial import TrialState
from transformers import TrainerCallback

from .. import config as config_mod
from .. import methods
from ..config import Config
from ..core import models, runs
from ..core.files import write_atomic, write_json
from ..errors import ConfigError
from ..train import engine, recipe
from ..train.hooks import Hooks
from ..train.stopping import drop_tracker

log = logging.getLogger(__name__)
# Heartbeats and their retry callback are marked experimental; they are Optuna's way of recovering crashed trials.
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
TASK_METRICS = ("macro_f1", "exact_match")  # the names stopping.task_metric reports


@dataclass(frozen=True)
class Param:
    """A searchable value: where it goes in the config, whether it is sampled on a log scale, and when it applies."""

    path: str
    log: bool
    applies: Callable[[Config], bool] = lambda cfg: True
    needs: str = ""


PARAMS = {
    "learning_rate": Param("training.learning_rate", True),
    "warmup": Param("training.warmup", False),
    "decay": Param("training.decay", False, lambda c: c.training.schedule == "wsd", "training.schedule wsd"),
    "attention_dropout": Param("training.dropout.attention_probs", False),
    "l2sp": Param(
        "training.l2sp",
        True,
        lambda c: methods.get(c.method.name).trains_base and c.training.regularization == "l2sp",
        "method.name full with training.regularization l2sp (L2-SP acts on fully trained weights)",
    ),
    "effective_batch": Param("training.effective_batch_examples", True),
    **{
        name: Param(p.path, p.log, lambda c, names=names: c.method.name in names, f"method.name {' or '.join(names)}")
        for name, (p, names) in methods.sweep_params().items()
    },  # each method's own, from the registry
}
DEFAULT_OFF = ("effective_batch",)  # changes the number of steps per trial: searched only when asked


@dataclass
class SweepResult:
    run_dir: str
    study: str
    storage: str
    params: dict[str, list]
    counts: dict[str, int]
    best: dict | None
    pareto: dict
    importances: dict[str, float] | None
    objective: dict
    files: list[str]
    trials: list[dict]  # one row per trial: state, score, parameters, task metric, retention drop, folder, ...

    def to_json(self) -> dict:
        return asdict(self)


def searched(cfg: Config) -> list[str]:
    """The parameters this sweep samples; ConfigError when one does not apply to the config or its range cannot
    be sampled or trained with."""
    names = cfg.sweep.params or [n for n, p in PARAMS.items() if n not in DEFAULT_OFF and p.applies(cfg)]
    for name in names:
        if not PARAMS[name].applies(cfg):
            raise ConfigError(f"{name} is searched but only applies with {PARAMS[name].needs}", field="sweep.params")
        if PARAMS[name].log and getattr(cfg.sweep, name)[0] <= 0:
            raise ConfigError(f"{name} is sampled on a log scale: its low bound must be above 0", field=f"sweep.{name}")
    for end, bound in enumerate(("low", "high")):  # both corners of the space must make a valid training config
        with_values(
            cfg,
            {n: getattr(cfg.sweep, n)[end] for n in names},
            source=f"sweep (every searched value at its {bound} bound)",
        )
    return names


def with_values(cfg: Config, values: dict, *, run: dict | None = None, source: str = "sweep") -> Config:
    """The config with searched `values` set at their config paths (and the `run` section updated)."""
    raw = cfg.model_dump(mode="json")
    raw["run"].update(run or {})
    if "effective_batch" in values:
        raw["training"]["effective_batch_tokens"] = None  # one effective-batch target at a time
    for key, value in values.items():
        *parents, leaf = PARAMS[key].path.split(".")
        node = raw
        for part in parents:
            node = node[part]
        node[leaf] = value
    return config_mod.validate(raw, source)


def storage_url(cfg: Config, sweep_dir: Path) -> str:
    return cfg.sweep.storage or f"sqlite:///{(sweep_dir / 'study.db').resolve()}"


def open_storage(cfg: Config, sweep_dir: Path) -> optuna.storages.RDBStorage:
    """The study's database, with heartbeats so that a dead worker's trials are failed and re-queued once."""
    import sqlalchemy.exc

    url = storage_url(cfg, sweep_dir)
    beat = cfg.sweep.heartbeat_seconds
    for wait in (0, 1, 3):  # workers starting together race to create the tables: on a retry they exist
        time.sleep(wait)
        try:
            return optuna.storages.RDBStorage(
                url,
                engine_kwargs={"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None,
                heartbeat_interval=beat,
                grace_period=2 * beat,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1),
            )
        except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.IntegrityError) as exc:
            error = exc
        except (sqlalchemy.exc.SQLAlchemyError, ImportError, ValueError) as exc:
            error = exc
            break
    reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    raise ConfigError(f"cannot open study storage '{_safe_url(url)}': {reason}", field="sweep.storage")


def _safe_url(url: str) -> str:
    """The URL with any password hidden."""
    import sqlalchemy.exc
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:  # not even a URL: nothing to hide
        return url


class TrialSeededSampler(optuna.samplers.BaseSampler):
    """TPE whose random draws for trial n are seeded with seed + n: one seed reproduces a sweep (also across a
    resume), and workers sharing a study never draw with the same random state."""

    def __init__(self, seed: int, startup_trials: int):
        self.seed, self.startup_trials = seed, startup_trials
        self.tpe = self._tpe(0)

    def _tpe(self, number: int) -> optuna.samplers.TPESampler:
        return optuna.samplers.TPESampler(seed=self.seed + number, n_startup_trials=self.startup_trials)

    def before_trial(self, study, trial):
        self.tpe = self._tpe(trial.number)
        self.tpe.before_trial(study, trial)

    def infer_relative_search_space(self, study, trial):
        return self.tpe.infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        return self.tpe.sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self.tpe.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study, trial, state, values):
        self.tpe.after_trial(study, trial, state, values)


def _pruner(cfg: Config) -> optuna.pruners.BasePruner:
    s = cfg.sweep
    if s.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=s.startup_trials, n_warmup_steps=s.warmup_evaluations)
    if s.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource="auto")
    return optuna.pruners.NopPruner()


class Pruning(TrainerCallback):
    """Reports each evaluation's composite score to the trial (step = evaluation index, comparable across trials
    with different step counts) and stops training cleanly when the pruner says so."""

    def __init__(self, trial: optuna.Trial):
        self.trial, self.evaluations, self.pruned_at, self.training = trial, 0, None, False

    def on_train_begin(self, args, state, control, **kwargs):
        self.evaluations, self.pruned_at, self.training = 0, None, True  # also after an out-of-memory restart

    def on_train_end(self, args, state, control, **kwargs):
        self.training = False  # the evaluation after training (best checkpoint restored) is not an intermediate

    @property
    def abandoned(self) -> bool:
        """A pruned trial's model is not used: training skips its final evaluation and save."""
        return self.pruned_at is not None

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if not self.training or self.pruned_at is not None or "eval_composite" not in (metrics or {}):
            return
        self.trial.report(metrics["eval_composite"], self.evaluations)
        self.evaluations += 1
        if self.trial.should_prune():
            self.pruned_at = state.global_step
            control.should_training_stop = True


def _retention(cfg: Config):
    """The retention-drop measure shared by every trial of this worker (the base model is scored once), or None
    when the composite has no retention term."""
    es = cfg.training.early_stopping
    if not (es.enabled and es.retention_weight):
        return None
    model, tokenizer = models.load(
        cfg.model.spec,
        dtype=cfg.model.dtype,
        revision=cfg.model.revision,
        trust_remote_code=cfg.model.trust_remote_code,
    )
    log.info("retention: measuring the base model once for every trial")
    return drop_tracker(model, tokenizer, cfg.evaluation, es.retention_questions, cfg.run.seed)


def _objective(cfg: Config, names: list[str], retention, sweep_dir: Path):
    def objective(trial: optuna.Trial) -> float:
        values = {}
        for name in names:
            low, high = getattr(cfg.sweep, name)
            suggest = trial.suggest_int if isinstance(low, int) else trial.suggest_float
            values[name] = suggest(name, low, high, log=PARAMS[name].log)
        folder = f"trial-{trial.number}"  # numbers come from the storage: unique across workers and restarts
        trial_cfg = with_values(cfg, values, run={"root": str(sweep_dir), "name": folder})
        trial.set_user_attr("run_dir", str(sweep_dir / folder))
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        pruning = Pruning(trial)
        result = recipe.train(trial_cfg, quiet=True, hooks=Hooks(callbacks=[pruning], retention_drop=retention))
        final = result.early_stopping["final"]
        task = next((m for m in TASK_METRICS if f"eval_{m}" in final), None)
        for key, value in {
            "validation_loss": final.get("eval_loss"),
            "task_metric": task,
            "task_score": final.get(f"eval_{task}"),
            "retention_drop": final.get("eval_retention_drop"),
            "steps": result.steps,
            "seconds": result.seconds,
            "pruned_at_step": pruning.pruned_at,
        }.items():
            trial.set_user_attr(key, value)
        if pruning.pruned_at is not None:
            raise optuna.TrialPruned(f"composite score lagging at step {pruning.pruned_at}")
        return final["eval_composite"]

    return objective


def sweep(cfg: Config, *, quiet: bool = False) -> SweepResult:
    """Run (or join, or continue) the configured study until it holds sweep.trials finished trials or this
    worker's time budget is spent; write the trials table, best config, Pareto front and figures under <run>/sweep/.
    """
    if not (cfg.data.validation_path or cfg.data.split.validation):
        raise ConfigError(
            "trials are scored on validation data: set data.split.validation above 0 or data.validation_path",
            field="data.split.validation",
        )
    names = searched(cfg)
    run_dir = runs.prepare(cfg, "sweep", overwrite=True)  # rerunning continues the study: nothing is replaced
    cfg = cfg.model_copy(update={"run": cfg.run.model_copy(update={"name": run_dir.name})})
    sweep_dir = run_dir / "sweep"
    optuna.logging.set_verbosity(optuna.logging.WARNING if quiet else optuna.logging.INFO)
    study = optuna.create_study(
        storage=open_storage(cfg, sweep_dir),
        study_name=cfg.sweep.study or run_dir.name,
        direction="maximize",
        load_if_exists=True,
        pruner=_pruner(cfg),
        sampler=TrialSeededSampler(cfg.run.seed, cfg.sweep.startup_trials),
    )
    s = cfg.sweep
    remaining = s.trials - len(study.get_trials(deepcopy=False, states=FINISHED)) if s.trials else None
    if remaining is None or remaining > 0:
        study.optimize(
            _objective(cfg, names, _retention(cfg), sweep_dir),
            n_trials=remaining,
            timeout=s.timeout_minutes * 60 if s.timeout_minutes else None,
            callbacks=[optuna.study.MaxTrialsCallback(s.trials, states=FINISHED)] if s.trials else [],
            catch=(engine.TrainingDiverged,),
            gc_after_trial=True,
            show_progress_bar=not quiet,
        )
    return summarise(cfg, study, names, sweep_dir)


def _row(trial: optuna.trial.FrozenTrial) -> dict:
    intermediate = trial.intermediate_values
    return {
        "number": trial.number,
        "state": trial.state.name,
        "composite": trial.value,
        "last_intermediate": intermediate[max(intermediate)] if intermediate else None,
        "evaluations": len(intermediate),
        **trial.params,
        **trial.user_attrs,
        "retry_of": optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(trial),
        "started": trial.datetime_start,
        "duration_s": trial.duration.total_seconds() if trial.duration else None,
    }


def pareto(rows: list[dict]) -> dict:
    """Completed trials not dominated on (task metric: higher is better, retention drop: lower is better); when
    retention is not measured, validation loss stands in for it."""
    cost = "retention_drop" if any(r.get("retention_drop") is not None for r in rows) else "validation_loss"
    points = [
        r for r in rows if r["state"] == "COMPLETE" and r.get("task_score") is not None and r.get(cost) is not None
    ]

    def dominated(r):
        return any(
            o["task_score"] >= r["task_score"]
            and o[cost] <= r[cost]
            and (o["task_score"], o[cost]) != (r["task_score"], r[cost])
            for o in points
        )

    front = sorted((r for r in points if not dominated(r)), key=lambda r: r[cost])
    return {
        "axes": {"x": cost, "y": points[0]["task_metric"] if points else "task_score"},
        "trials": [{"number": r["number"], "task_score": r["task_score"], cost: r[cost]} for r in front],
    }


def importances(study: optuna.Study, seed: int) -> dict[str, float] | None:
    """fANOVA importance of each parameter for the composite score (needs two completed trials)."""
    if len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))) < 2:
        return None
    try:
        return optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=seed)
        )
    except RuntimeError as exc:  # fANOVA finds no variance to share out (identical values or scores)
        log.info("no parameter importances: %s", exc)
        return None


def summarise(cfg: Config, study: optuna.Study, names: list[str], sweep_dir: Path) -> SweepResult:
    """Write trials.csv, sweep.json, best.yaml (when a trial completed) and the figures; return the summary."""
    trials = study.get_trials(deepcopy=False)
    rows = [_row(t) for t in trials]
    table = io.StringIO()
    writer = csv.DictWriter(table, list(dict.fromkeys(k for r in rows for k in r)))
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(sweep_dir / "trials.csv", table.getvalue())
    best = None
    if any(t.state == TrialState.COMPLETE for t in trials):
        trial = study.best_trial
        # The sweep's run section: `deftune train sweep/best.yaml` trains into <run>/train.
        write_atomic(sweep_dir / "best.yaml", config_mod.dump(with_values(cfg, trial.params)))
        best = {
            "number": trial.number,
            "composite": trial.value,
            "params": trial.params,
            "run_dir": trial.user_attrs.get("run_dir"),
            "config": str(sweep_dir / "best.yaml"),
        }
    front = pareto(rows)
    result = SweepResult(
        run_dir=str(sweep_dir.parent),
        study=study.study_name,
        storage=_safe_url(storage_url(cfg, sweep_dir)),
        params={n: [*getattr(cfg.sweep, n), "log" if PARAMS[n].log else "linear"] for n in names},
        counts={state.name: sum(t.state == state for t in trials) for state in TrialState},
        best=best,
        pareto=front,
        importances=importances(study, cfg.run.seed),
        files=[],
        trials=rows,
        objective={
            "score": "composite validation score, higher is better",
            "weights": cfg.training.early_stopping.model_dump(
                include={"loss_weight", "task_weight", "retention_weight"}
            ),
        },
    )
    result.files = [
        "trials.csv",
        "sweep.json",
        *(["best.yaml"] if best else []),
        *draw(rows, front, result.importances, sweep_dir),
    ]
    write_json(sweep_dir / "sweep.json", result.to_json())
    return result


def draw(rows: list[dict], front: dict, importance: dict[str, float] | None, out_dir: Path) -> list[str]:
    """Optimisation history, parameter importances and the Pareto front, each as PNG and SVG; returns the files."""
    figures = {}
    done = [r for r in rows if r["state"] in ("COMPLETE", "PRUNED")]
    if done:
        fig = Figure(figsize=(7, 3.5))
        ax = fig.add_subplot()
        for state, marker in (("COMPLETE", "o"), ("PRUNED", "x")):
            shown = [r for r in done if r["state"] == state]
            ax.scatter(
                [r["number"] for r in shown],
                [r["composite"] if state == "COMPLETE" else r["last_intermediate"] for r in shown],
                marker=marker,
                label=state.lower() + (" (last reported)" if state == "PRUNED" else ""),
            )
        complete = [r for r in done if r["state"] == "COMPLETE"]
        best = [max(r["composite"] for r in complete if r["number"] <= n["number"]) for n in complete]
        ax.step([r["number"] for r in complete], best, where="post", color="black", label="best so far")
        ax.set(xlabel="trial", ylabel="composite score (higher is better)", title="Optimisation history")
        ax.legend()
        figures["history"] = fig
    if importance:
        fig = Figure(figsize=(7, 0.5 + 0.4 * len(importance)))
        ax = fig.add_subplot()
        ax.barh(list(importance)[::-1], list(importance.values())[::-1])
        ax.set(xlabel="fANOVA importance (share of the composite's variance)", title="Parameter importances")
        figures["importances"] = fig
    points = [
        r
        for r in rows
        if r["state"] == "COMPLETE" and r.get("task_score") is not None and r.get(front["axes"]["x"]) is not None
    ]
    if points:
        x, on_front = front["axes"]["x"], {t["number"] for t in front["trials"]}
        fig = Figure(figsize=(6, 4.5))
        ax = fig.add_subplot()
        ax.scatter([r[x] for r in points], [r["task_score"] for r in points], color="lightgray", label="trials")
        chosen = sorted((r for r in points if r["number"] in on_front), key=lambda r: r[x])
        ax.plot([r[x] for r in chosen], [r["task_score"] for r in chosen], "o-", color="tab:red", label="Pareto front")
        for r in chosen:
            ax.annotate(str(r["number"]), (r[x], r["task_score"]), textcoords="offset points", xytext=(4, 4))
        ax.set(
            xlabel=f"{x.replace('_', ' ')} (lower is better)",
            ylabel=f"{front['axes']['y']} (higher is better)",
            title="Task metric versus retention" if x == "retention_drop" else "Task metric versus loss",
        )
        ax.legend()
        figures["pareto"] = fig
    files = []
    for name, fig in figures.items():
        FigureCanvasAgg(fig)
        fig.tight_layout()
        for ext in ("png", "svg"):
            fig.savefig(out_dir / f"{name}.{ext}", dpi=110)
            files.append(f"{name}.{ext}")
    return files
