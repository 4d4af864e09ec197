"""A small real sweep: the embedded SmolLM2-135M-Instruct on a reduced BBC News demo (100 training examples, one
epoch, evaluated every 4 steps), a few trials with retention in the composite score, printed as one JSON object
(per-trial scores, best trial, Pareto front of macro-F1 versus retention drop, importances, seconds).
Run: .venv/bin/python bench/sweep_demo.py [key=value ...]   (overrides go after the defaults below)"""

from __future__ import annotations

import json
import sys
import tempfile
import time

from deftune import config
from deftune.sweep import study as sweep

DEFAULTS = [
    "data.max_train_examples=100",
    "data.max_validation_examples=24",
    "training.epochs=1",
    "training.eval_steps=4",
    "training.early_stopping.task_examples=24",
    "training.early_stopping.retention_weight=1",
    "training.early_stopping.retention_questions=10",
    "evaluation.retention_benchmarks=[piqa,openbookqa]",
    "sweep.trials=5",
    "sweep.startup_trials=2",
    "sweep.params=[learning_rate,lora_r,attention_dropout]",
    "run.name=sweep-demo",
]


def main() -> None:
    started = time.monotonic()
    overrides = [*DEFAULTS, *sys.argv[1:]]
    if not any(o.startswith("run.root=") for o in overrides):
        overrides.append(f"run.root={tempfile.mkdtemp(prefix='deftune-sweep-')}")
    result = sweep.sweep(config.load(None, overrides), quiet=True)
    keep = (
        "number",
        "state",
        "composite",
        "task_score",
        "retention_drop",
        "validation_loss",
        "steps",
        "seconds",
        *result.params,
    )
    print(
        json.dumps(
            {
                "overrides": overrides,
                "seconds": round(time.monotonic() - started, 1),
                "units": {
                    "composite": "-validation loss + macro-F1 - retention drop (higher is better)",
                    "retention_drop": "share of retention questions lost versus the base model",
                    "seconds": "s per trial (training and its evaluations)",
                },
                "trials": [{k: r.get(k) for k in keep} for r in result.trials],
                "best": result.best,
                "pareto": result.pareto,
                "importances": result.importances,
                "counts": result.counts,
                "run_dir": result.run_dir,
            },
            indent=2,
            default=str,
        )
    )


if __name__ == "__main__":
    main()
