"""Hyperparameter sweeps: an Optuna study over training runs (`study`); `deftune sweep` is deftune.cli.sweep."""
