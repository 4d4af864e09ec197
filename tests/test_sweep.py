"""`deftune sweep` on the tiny model: results, pruning, resume after a kill, two workers on one study, bad input."""

import json
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest

from deftune import config
from deftune.errors import ConfigError
from deftune.sweep import study as sweep
from tests.helpers import classification_file

pytestmark = pytest.mark.slow  # whole pipelines / several training runs each


def _overrides(tmp_path, tiny_model, name, *extra):
    data = tmp_path / "topics.jsonl"
    if not data.exists():
        classification_file(data, copies=3)
    return [
        f"model.spec={tiny_model}",
        f"data.path={data}",
        f"run.root={tmp_path / 'runs'}",
        f"run.name={name}",
        "data.split.test=0",
        "data.split.validation=0.25",
        "training.max_tokens=256",
        "training.max_steps=4",
        "training.eval_steps=2",
        "training.early_stopping.task_examples=4",
        "sweep.learning_rate=[1e-3,5e-2]",
        "sweep.startup_trials=2",
        "sweep.warmup_evaluations=0",
        *extra,
    ]


def _study(tmp_path, name) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{tmp_path / 'runs' / name / 'sweep' / 'study.db'}")


def _workers(tmp_path, tiny_model, name, n, *extra):
    """`n` sweep worker processes, started together (the real CLI)."""
    args = [sys.executable, "-m", "deftune", "sweep", *_overrides(tmp_path, tiny_model, name, *extra), "--quiet"]
    return [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(n)]


def test_sweep_writes_trials_best_config_pareto_and_figures(tmp_path, tiny_model):
    cfg = config.load(
        None,
        _overrides(
            tmp_path,
            tiny_model,
            "s",
            "sweep.trials=3",
            "sweep.pruner=none",
            "training.early_stopping.retention_weight=1",
            "training.early_stopping.retention_questions=3",
            "evaluation.retention_benchmarks=[piqa]",
        ),
    )
    result = sweep.sweep(cfg, quiet=True)
    out = tmp_path / "runs" / "s" / "sweep"
    assert result.counts["COMPLETE"] == 3
    assert set(result.params) == {"learning_rate", "warmup", "decay", "lora_r", "lora_alpha", "attention_dropout"}
    rows = json.loads((out / "sweep.json").read_text())["trials"]
    assert rows == json.loads(json.dumps(result.trials, default=str))
    assert [r["number"] for r in rows] == [0, 1, 2]
    assert (out / "trials.csv").read_text().count("\n") == 4
    for r in rows:  # each trial trained into its own run folder
        assert json.loads((out / f"trial-{r['number']}" / "train" / "result.json").read_text())["steps"] == 4
        assert r["composite"] == pytest.approx(r["task_score"] - r["validation_loss"] - r["retention_drop"])

    best = max(rows, key=lambda r: r["composite"])
    assert result.best["number"] == best["number"]
    best_cfg = config.load(out / "best.yaml")  # ready for `deftune train`: into the sweep's run folder
    assert (best_cfg.run.root, best_cfg.run.name) == (str(tmp_path / "runs"), "s")
    assert best_cfg.training.learning_rate == best["learning_rate"] and best_cfg.method.lora.r == best["lora_r"]
    assert best_cfg.training.dropout.attention_probs == best["attention_dropout"]

    assert result.pareto["axes"] == {"x": "retention_drop", "y": "macro_f1"}
    front = {t["number"] for t in result.pareto["trials"]}
    for r in rows:
        dominated = any(
            o["task_score"] >= r["task_score"]
            and o["retention_drop"] <= r["retention_drop"]
            and (o["task_score"], o["retention_drop"]) != (r["task_score"], r["retention_drop"])
            for o in rows
        )
        assert (r["number"] in front) == (not dominated)
    assert set(result.importances) == set(result.params)
    for name in ("history", "importances", "pareto"):
        for ext in ("png", "svg"):
            assert (out / f"{name}.{ext}").stat().st_size > 1000


def test_the_sampler_draws_by_run_seed_and_trial_number():
    def draws(seed, n):
        study = optuna.create_study(sampler=sweep.TrialSeededSampler(seed, startup_trials=2))
        return [study.ask().suggest_float("x", 0, 1) for _ in range(n)]

    assert draws(42, 3) == draws(42, 3)  # a seed reproduces a sweep
    assert len(set(draws(42, 3))) == 3 and draws(42, 1) != draws(7, 1)  # each trial number draws anew


def test_the_pruner_stops_a_bad_trial(tmp_path, tiny_model):
    overrides = _overrides(
        tmp_path,
        tiny_model,
        "p",
        "sweep.trials=3",
        "sweep.params=[learning_rate]",
        "sweep.learning_rate=[1e-9,5e-2]",
        "training.max_steps=6",
    )
    (tmp_path / "runs" / "p" / "sweep").mkdir(parents=True)
    study = optuna.create_study(
        study_name="p", direction="maximize", storage=f"sqlite:///{tmp_path / 'runs' / 'p' / 'sweep' / 'study.db'}"
    )
    for lr in (3e-2, 3e-2, 1e-9):  # two good trials, then one that cannot learn anything in a few steps
        study.enqueue_trial({"learning_rate": lr})
    result = sweep.sweep(config.load(None, overrides), quiet=True)
    trials = _study(tmp_path, "p").trials
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE", "PRUNED"]
    bad = trials[2]
    assert list(bad.intermediate_values) == [0]  # stopped at its first evaluation (step 2 of 6)
    assert bad.user_attrs["pruned_at_step"] == 2 and bad.user_attrs["steps"] == 2
    assert bad.user_attrs["validation_loss"] is None  # a pruned trial skips the final evaluation ...
    assert not (tmp_path / "runs" / "p" / "sweep" / "trial-2" / "train" / "adapter").exists()  # ... and the save
    assert (tmp_path / "runs" / "p" / "sweep" / "trial-1" / "train" / "adapter").is_dir()
    good_first = sorted(t.intermediate_values[0] for t in trials[:2])
    assert bad.intermediate_values[0] < sum(good_first) / 2  # below the median the pruner compares with
    assert result.best["number"] in (0, 1) and result.counts == {
        "RUNNING": 0,
        "COMPLETE": 2,
        "PRUNED": 1,
        "FAIL": 0,
        "WAITING": 0,
    }


@pytest.mark.processes
def test_a_killed_sweep_continues_the_same_study(tmp_path, tiny_model):
    extra = ("sweep.trials=3", "sweep.heartbeat_seconds=1", "sweep.pruner=none")
    [worker] = _workers(tmp_path, tiny_model, "k", 1, *extra)
    second = tmp_path / "runs" / "k" / "sweep" / "trial-1" / "config.yaml"
    deadline = time.monotonic() + 240
    while not second.exists() and worker.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert worker.poll() is None, worker.communicate()[1]
    os.kill(worker.pid, signal.SIGKILL)  # mid-trial 1: the trial is left RUNNING
    worker.wait()
    assert [t.state.name for t in _study(tmp_path, "k").trials] == ["COMPLETE", "RUNNING"]
    time.sleep(2.5)  # past the heartbeat grace period (2 x 1 s)

    result = sweep.sweep(config.load(None, _overrides(tmp_path, tiny_model, "k", *extra)), quiet=True)
    trials = _study(tmp_path, "k").trials
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    retried = [t for t in trials[2:] if t.system_attrs.get("failed_trial") == 1]  # re-queued once, same values
    assert len(retried) == 1 and retried[0].params == trials[1].params
    assert result.counts["COMPLETE"] == 3  # trial 0 was not run again
    assert (tmp_path / "runs" / "k" / "sweep" / "trial-3" / "train" / "adapter").is_dir()


@pytest.mark.processes
def test_two_workers_on_one_sqlite_study_share_it_without_duplicates(tmp_path, tiny_model):
    workers = _workers(tmp_path, tiny_model, "w", 2, "sweep.trials=4", "sweep.pruner=none")
    for w in workers:
        _, err = w.communicate(timeout=600)
        assert w.returncode == 0, err
    trials = _study(tmp_path, "w").trials
    assert all(t.state.name == "COMPLETE" for t in trials) and 4 <= len(trials) <= 5  # one may finish after the 4th
    assert len({tuple(sorted(t.params.items())) for t in trials}) == len(trials)
    assert len({t.user_attrs["worker"] for t in trials}) == 2
    for t in trials:
        assert (tmp_path / "runs" / "w" / "sweep" / f"trial-{t.number}" / "train" / "result.json").is_file()


def test_a_bad_storage_url_is_one_line_and_exits_2(tmp_path, entry_point):
    result = entry_point("sweep", f"run.root={tmp_path}", "sweep.storage=postgresql://me:secret@nowhere/db")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "sweep.storage: cannot open study storage 'postgresql://me:***@nowhere/db'" in result.stderr


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["sweep.params=[]"], "sweep: Value error, params: the search space is empty"),
        (["sweep.params=[lr]"], "params: unknown lr (searchable: learning_rate, "),
        (["sweep.learning_rate=[1e-3,1e-5]"], "learning_rate: the range [0.001, 1e-05] must have low < high"),
        (["sweep.trials=null"], "set trials or timeout_minutes"),
        (
            ["sweep.params=[reduction_factor]"],
            ("sweep.params: reduction_factor is searched but only applies with method.name adapter"),
        ),
        (["method.name=full", "sweep.params=[l2sp]", "sweep.l2sp=[0,1]"], "sweep.l2sp: l2sp is sampled on a log scale"),
        (
            ["sweep.params=[warmup,decay]", "sweep.warmup=[0,0.6]", "sweep.decay=[0.1,0.5]"],
            "sweep (every searched value at its high bound): training: Value error, warmup + decay must not exceed 1",
        ),
        (["data.split.validation=0"], "trials are scored on validation data"),
    ],
)
def test_search_spaces_that_cannot_train_are_refused(tmp_path, overrides, message):
    with pytest.raises(ConfigError) as caught:
        sweep.sweep(config.load(None, [f"run.root={tmp_path}", *overrides]))
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert not list(tmp_path.rglob("study.db"))  # refused before any study was made
