"""deftune: careful fine-tuning of large language models.

The Python API mirrors the CLI, each call returning the stage's result: ``deftune.run(config)`` (every stage),
``deftune.audit(dataset, ...)``, ``deftune.plan(config)``, ``deftune.train.train(config)``,
``deftune.evaluate.evaluate(run_or_model)``, ``deftune.report.build(run)``. (Training, evaluation and the report
are called through their packages: a top-level function named like a package would be replaced by the package
once it is imported.)
"""

from __future__ import annotations

from .config import Config
from .config import load as load_config
from .errors import DeftuneError

__version__ = "0.1.0"
__all__ = ["Config", "DeftuneError", "audit", "load_config", "plan", "run"]


def run(config: Config | None = None, **kwargs):
    """Every stage into one run folder (the demo when `config` is None); see `deftune.pipeline.run`."""
    from .pipeline import run as _run

    return _run(config or Config(), **kwargs)


def audit(train, **kwargs):
    """Audit a dataset (a deftune.data.Dataset); see `deftune.data.audit.audit`."""
    from .data.audit import audit as _audit

    return _audit(train, **kwargs)


def plan(config: Config | None = None, **kwargs):
    """The memory and compute plan of a configuration; see `deftune.plan.compare.make`."""
    from .plan.compare import make

    return make(config or Config(), **kwargs)
