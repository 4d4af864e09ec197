"""Evaluation: generation, task metrics, error analysis, stress tests and retention."""
