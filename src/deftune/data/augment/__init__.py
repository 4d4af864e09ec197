"""Data augmentation that keeps the meaning: back-translation and controlled paraphrasing of training records,
filtered for meaning preservation and novelty, never producing variants of (or near) evaluation records.

`for_training(parts, config, run_dir)` is what the training pipeline calls on the train/validation/test split (it
augments only when data.augment.enabled); `augment_split(parts, config)` does the work unconditionally."""

__all__ = ["AugmentResult", "augment", "augment_split", "for_training", "write"]


def __getattr__(name: str):
    if name in __all__:  # imported on use: the pipeline pulls in torch and scikit-learn
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(name)
