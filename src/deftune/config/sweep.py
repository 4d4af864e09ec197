"""`sweep`: the hyperparameter search (its method-specific ranges come from the method registry)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, create_model, model_validator

from .. import methods
from .base import Section


class SearchSettings(Section):
    """`deftune sweep`: hyperparameter search with Optuna (TPE seeded by run.seed, pruning on the composite
    validation score that training.early_stopping weighs). Each range is [low, high]; `params` picks the searched."""

    params: list[str] | None = Field(
        None,
        description="parameters searched (default: learning_rate, warmup, decay, "
        "attention_dropout and the method's own: lora_r and "
        "lora_alpha, reduction_factor, or l2sp for full)",
    )
    learning_rate: tuple[float, float] = Field((1e-5, 1e-3), description="training.learning_rate (log scale)")
    warmup: tuple[float, float] = Field((0.0, 0.1), description="training.warmup")
    decay: tuple[float, float] = Field((0.1, 0.5), description="training.decay")
    attention_dropout: tuple[float, float] = Field((0.0, 0.2), description="training.dropout.attention_probs")
    l2sp: tuple[float, float] = Field((1e-4, 1.0), description="training.l2sp (log scale)")
    effective_batch: tuple[int, int] = Field((8, 64), description="training.effective_batch_examples (log scale)")
    trials: int | None = Field(
        20,
        gt=0,
        description="finished (complete or pruned) trials the study aims for, "
        "over all workers and restarts (None: until the time budget)",
    )
    timeout_minutes: float | None = Field(None, gt=0, description="this worker starts no trial after this long")
    pruner: Literal["median", "hyperband", "none"] = Field(
        "median",
        description="stop trials whose intermediate composite score lags (median of earlier trials at "
        "the same evaluation, or Hyperband's successive halving)",
    )
    startup_trials: int = Field(
        4,
        ge=0,
        description="random trials before TPE models the results; also the "
        "trials finished before the median pruner acts",
    )
    warmup_evaluations: int = Field(1, ge=0, description="evaluations of a trial before the median pruner may stop it")
    storage: str | None = Field(
        None,
        description="SQLAlchemy URL of the study, shared by every worker (default: SQLite in <run>/sweep/study.db)",
    )
    study: str | None = Field(None, description="study name (default: the run name)")
    heartbeat_seconds: int = Field(
        60,
        gt=0,
        description="a running trial silent for twice this long (its worker died) is marked failed and re-queued once",
    )

    @model_validator(mode="after")
    def _consistent(self):
        ranges = [n for n in type(self).model_fields if isinstance(getattr(self, n), tuple)]
        for name in ranges:
            low, high = getattr(self, name)
            if not low < high:
                raise ValueError(f"{name}: the range [{low}, {high}] must have low < high")
        unknown = [p for p in self.params or [] if p not in ranges]
        if unknown:
            raise ValueError(f"params: unknown {', '.join(unknown)} (searchable: {', '.join(ranges)})")
        if self.params == []:
            raise ValueError("params: the search space is empty; name at least one parameter or leave it unset")
        if self.trials is None and self.timeout_minutes is None:
            raise ValueError("set trials or timeout_minutes, or the sweep would never end")
        return self


SweepConfig = create_model(
    "SweepConfig",
    __base__=SearchSettings,
    __doc__=SearchSettings.__doc__,
    **{
        name: (tuple[type(p.default[0]), type(p.default[1])], Field(p.default, description=p.description))
        for name, (p, _) in methods.sweep_params().items()
    },
)
