"""Training: the recipe (`recipe`: named steps from data to saved weights) on one configured Hugging Face Trainer
(`engine`), with loss terms (`terms`), data transforms, hooks, memory policy and estimates.
`deftune.train.train(config)` fine-tunes."""

from ..config import Config
from .hooks import Hooks
from .recipe import TrainResult
from .recipe import train as _train

__all__ = ["Hooks", "TrainResult", "train"]


def train(cfg: Config | None = None, **kwargs) -> TrainResult:
    """Fine-tune as configured (the demo when `cfg` is None); see `deftune.train.recipe.train`."""
    return _train(cfg or Config(), **kwargs)
