"""Training: methods and the configured Hugging Face Trainer. `deftune.train.train(config)` fine-tunes."""


def train(cfg=None, **kwargs):
    """Fine-tune as configured (the demo when `cfg` is None); see `deftune.train.trainer.train`."""
    from ..config import Config
    from .trainer import train as _train

    return _train(cfg or Config(), **kwargs)
