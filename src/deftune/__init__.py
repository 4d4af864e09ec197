"""deftune: careful fine-tuning of large language models.

The Python API mirrors the CLI: ``deftune.train(config)`` returns the stage's result object.
"""

from __future__ import annotations

from .config import Config, load as load_config
from .errors import DeftuneError

__version__ = "0.1.0"
__all__ = ["Config", "DeftuneError", "load_config", "train"]


def train(config: Config | None = None, **kwargs):
    """Fine-tune as configured (the demo when `config` is None); see `deftune.train.trainer.train`."""
    from .train.trainer import train as _train

    return _train(config or Config(), **kwargs)
