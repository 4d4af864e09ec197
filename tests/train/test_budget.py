"""training.time_budget: the WSD decay starts early enough to end inside the budget."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from deftune import config
from deftune.config import TrainingConfig, parse_duration
from deftune.errors import ConfigError
from deftune.train import budget, recipe, schedule
from tests.helpers import classification_file


class Clock:
    """A fake monotonic clock: `seconds_per_call` pass on every reading."""

    def __init__(self, seconds_per_call: float):
        self.now, self.step = 0.0, seconds_per_call

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def _drive(callback, scheduler, steps: int):
    args = SimpleNamespace(eval_strategy="steps")
    state = SimpleNamespace(global_step=0, max_steps=steps)
    control = SimpleNamespace(should_training_stop=False, should_save=False, should_evaluate=False)
    callback.on_train_begin(args, state, control)
    while not control.should_training_stop and state.global_step < steps:
        state.global_step += 1
        callback.on_step_end(args, state, control, lr_scheduler=scheduler)
    return state.global_step, control


def test_the_budget_cuts_the_stable_phase_and_completes_the_decay(monkeypatch):
    monkeypatch.setattr(budget.time, "monotonic", Clock(1.0))  # one second per step
    cfg = TrainingConfig(schedule="wsd", warmup=0.1, decay=0.2, time_budget="50s")
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = schedule.create(opt, cfg, 100)
    callback = budget.TimeBudget(cfg.time_budget_seconds, cfg.decay)
    ran, control = _drive(callback, scheduler, 100)
    outcome = callback.outcome
    assert outcome.cut and outcome.planned_steps == 100 and ran == outcome.end_step
    assert 45 <= outcome.end_step <= 50  # inside the budget
    assert outcome.end_step - outcome.decay_from == pytest.approx(0.2 * outcome.end_step, abs=1)
    assert control.should_save and control.should_evaluate  # the decayed weights are evaluated and kept
    lr = schedule.learning_rate(scheduler)
    assert lr(outcome.end_step - 1) < 0.15 and lr(outcome.decay_from - 1) == 1.0


def test_a_budget_that_suffices_changes_nothing(monkeypatch):
    monkeypatch.setattr(budget.time, "monotonic", Clock(1.0))
    cfg = TrainingConfig(schedule="wsd", time_budget="2h")
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = schedule.create(opt, cfg, 100)
    callback = budget.TimeBudget(cfg.time_budget_seconds, cfg.decay)
    ran, _ = _drive(callback, scheduler, 100)
    assert ran == 100 and not callback.outcome.cut and schedule.learning_rate(scheduler).total == 100


def test_durations_and_their_errors():
    assert [parse_duration(t) for t in ("90s", "20m", "2h", "1h30m", "45", "1.5h")] == [90, 1200, 7200, 5400, 45, 5400]
    with pytest.raises(ConfigError, match="training.time_budget: .*expected a duration"):
        config.load(None, ["training.time_budget=5d"])
    with pytest.raises(ConfigError, match="time_budget needs schedule: wsd"):
        config.load(None, ["training.time_budget=5m", "training.schedule=cosine"])


def test_training_records_the_cut(tmp_path, tiny_model, monkeypatch):
    monkeypatch.setattr(budget.time, "monotonic", Clock(1.0))
    data = classification_file(tmp_path / "topics.jsonl", copies=3)
    cfg = config.load(
        None,
        [
            f"model.spec={tiny_model}",
            f"data.path={data}",
            f"run.root={tmp_path}",
            "run.name=b",
            "data.split.test=0",
            "data.split.validation=0",
            "training.max_tokens=64",
            "training.max_steps=30",
            "training.time_budget=12s",
        ],
    )
    result = recipe.train(cfg, quiet=True)
    recorded = json.loads((Path(result.run_dir) / "train" / "result.json").read_text())["time_budget"]
    assert recorded["cut"] and recorded["planned_steps"] == 30 and result.steps == recorded["end_step"] < 30
    rows = [json.loads(line) for line in (Path(result.run_dir) / "train" / "metrics.jsonl").read_text().splitlines()]
    phases = [r["phase"] for r in rows if "phase" in r]
    assert phases[-1] == "decay" and "stable" in phases
