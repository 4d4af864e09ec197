"""Hyperparameter sweeps: an Optuna study over training runs (`study`), and `deftune sweep` (`command`, which
starts without importing Optuna)."""
