"""`training.time_budget`: a run that ends in time, its learning-rate decay complete.

Training measures its own pace (wall time per optimizer step, evaluations included) and, while the WSD schedule is
in its stable phase, projects the last step the budget reaches. As soon as decay must start for the run to end
there with its configured decay share, the schedule's end is moved to that step (`LearningRate.end_at`); at the
end the run evaluates and saves once more, so early stopping can keep the decayed weights."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

from transformers import TrainerCallback

from .schedule import learning_rate


@dataclass
class BudgetOutcome:
    seconds: float  # the budget
    planned_steps: int  # the run's steps without a budget
    end_step: int  # the last step the schedule aims at (planned_steps unless cut)
    decay_from: int | None  # the step where the cut started the decay (None: not cut)

    @property
    def cut(self) -> bool:
        return self.decay_from is not None

    def to_json(self) -> dict:
        return asdict(self) | {"cut": self.cut}


class TimeBudget(TrainerCallback):
    """Ends a WSD run inside `seconds` of wall time (see the module docstring)."""

    def __init__(self, seconds: float, decay_share: float):
        self.seconds, self.decay_share = seconds, decay_share
        self.outcome: BudgetOutcome | None = None
        self.started = self.first_step = None
        self.evaluation_seconds = 0.0  # the latest evaluation's duration: kept in reserve for the final one
        self._step_ended = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.started, self.first_step = time.monotonic(), state.global_step
        self.outcome = BudgetOutcome(self.seconds, state.max_steps, state.max_steps, None)

    def on_evaluate(self, args, state, control, **kwargs):
        if self._step_ended is not None:
            self.evaluation_seconds = time.monotonic() - self._step_ended

    def on_step_end(self, args, state, control, lr_scheduler=None, **kwargs):
        self._step_ended = now = time.monotonic()
        step, outcome = state.global_step, self.outcome
        if outcome.cut or step >= outcome.end_step:
            if step >= outcome.end_step:
                control.should_training_stop = True
                control.should_save = True
                control.should_evaluate = args.eval_strategy != "no"
            return
        schedule = learning_rate(lr_scheduler)
        if schedule is None or schedule.phases.phase(step) != "stable":  # decay can only start from the plateau
            return
        elapsed = now - self.started
        pace = elapsed / max(step - self.first_step, 1)
        reachable = step + math.floor((self.seconds - elapsed - self.evaluation_seconds) / pace)
        if reachable >= schedule.total:
            return
        if step + 1 >= reachable or step >= reachable - max(1, round(self.decay_share * reachable)):
            end = max(step + 1, reachable)
            schedule.end_at(step, end)
            self.outcome = BudgetOutcome(self.seconds, outcome.planned_steps, end, step)
