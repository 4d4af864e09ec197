"""Memory policy, shared by training and the plan: how much memory a run may take, whether a configuration is
estimated to fit, the largest token budget that does (lowered before training), and the out-of-memory back-off
(micro-batches halved, accumulation doubled, same effective batch)."""

from __future__ import annotations

import ctypes
import logging
import math
import os
import sys

import torch

from ..config import Config
from ..errors import ModelError
from .estimate import estimate as estimate_run

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
MMAP_THRESHOLD_BYTES = 256 * 1024


def return_freed_memory() -> bool:
    """On CPU under glibc, serve every allocation of 256 KiB or more (every activation-sized tensor) by mmap, so
    that what a step frees goes back to the system at once instead of staying in a heap that fragments. With
    glibc's default (a threshold that grows to 32 MiB) a training process holds 20–75% more resident memory than
    this plan estimates; with this setting it holds what the plan estimates — but every step faults its memory
    in anew (LoRA on the embedded model, 2 CPU cores: 3.5 instead of 1.9 s per step). For memory-tight CPU runs:
    call once before the model is loaded; True when it took effect."""
    if torch.cuda.is_available() or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    return mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1


def memory_budget() -> int:
    """Memory a training run may still take, in bytes: free CUDA memory on GPU, MemAvailable on CPU."""
    if torch.cuda.is_available():
        return torch.cuda.mem_get_info()[0]
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def fits(cfg: Config, budget_bytes: int, *, trained_per_row: int | None = None, loaded: bool = False) -> bool:
    """Whether a run of `cfg` is estimated to fit in `budget_bytes` (`memory_budget()`: what the process may
    still take). With `loaded`, the model's weights are in memory already and left out of the estimate."""
    est = estimate_run(cfg, trained_per_row=trained_per_row, timed=False)
    return est.peak_bytes - (est.memory_bytes["weights"] if loaded else 0) <= budget_bytes


def suggest_max_tokens(
    cfg: Config, budget_bytes: int, *, trained_per_row: int | None = None, loaded: bool = False
) -> int:
    """The largest `training.max_tokens` up to the configured one — a whole number of max_length examples — whose
    run is estimated to fit in `budget_bytes` (as in `fits`); 0 when not even one example fits."""
    if cfg.training.batching != "token_budget":
        raise ValueError("suggest_max_tokens is for token-budget batching")
    length, configured = cfg.data.max_length, cfg.training.max_tokens

    def fits_with(tokens: int) -> bool:
        trial = cfg.model_copy(update={"training": cfg.training.model_copy(update={"max_tokens": tokens})})
        return fits(trial, budget_bytes, trained_per_row=trained_per_row, loaded=loaded)

    if fits_with(configured):
        return configured
    low, high = 0, configured // length  # examples per micro-batch: low fits (or is 0), high does not
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if fits_with(middle * length) else (low, middle)
    return low * length


def smaller_batches(cfg: Config) -> Config | None:
    """The config with micro-batches halved and gradient accumulation doubled (same effective batch), or None
    when they cannot shrink further."""
    t = cfg.training
    if t.batching == "token_budget":
        if t.max_tokens < 2 * 64:
            return None
        change = {"max_tokens": t.max_tokens // 2}
    else:
        if t.batch_size == 1:
            return None
        change = {"batch_size": t.batch_size // 2}
    if not (t.effective_batch_tokens or t.effective_batch_examples):
        change["gradient_accumulation"] = t.gradient_accumulation * 2
    return cfg.model_copy(update={"training": t.model_copy(update=change)})


def fit(cfg: Config, trained_per_row: int | None) -> tuple[Config, dict]:
    """The memory plan before training (model loaded): a token budget estimated not to fit in the memory left is
    lowered to the largest that fits (gradient accumulation raised to keep the effective batch); any other run
    estimated not to fit is warned about. Returns the config to train with and the plan's figures."""
    budget = memory_budget()
    try:
        estimate = estimate_run(cfg, trained_per_row=trained_per_row, timed=False)
    except ModelError as exc:  # an architecture the plan does not model
        log.info("no memory plan: %s", exc)
        return cfg, {"skipped": str(exc)}
    needed = estimate.peak_bytes - estimate.memory_bytes["weights"]
    found = {
        "estimated_peak_bytes": estimate.peak_bytes,
        "still_needed_bytes": needed,
        "available_bytes": budget,
        "max_tokens_lowered_from": None,
    }
    if needed <= budget:
        return cfg, found
    t = cfg.training
    accumulating = cfg.model_copy(
        update={
            "training": t.model_copy(  # smaller micro-batches accumulate gradients
                update={"gradient_accumulation": max(2, t.gradient_accumulation)}
            )
        }
    )
    tokens = (
        suggest_max_tokens(accumulating, budget, trained_per_row=trained_per_row, loaded=True)
        if t.batching == "token_budget"
        else 0
    )
    if not tokens:
        log.warning(
            "memory plan: this run needs about %.1f GiB more at its peak but %.1f GiB are available; it will "
            "likely run out of memory (try gradient checkpointing, bf16, a PEFT method or a shorter "
            "data.max_length)",
            needed / 2**30,
            budget / 2**30,
        )
        return cfg, found
    change = {"max_tokens": tokens}
    if not (t.effective_batch_tokens or t.effective_batch_examples):
        change["gradient_accumulation"] = t.gradient_accumulation * math.ceil(t.max_tokens / tokens)
    log.warning(
        "memory plan: %d tokens per micro-batch need about %.1f GiB, %.1f GiB are available: training with "
        "%d tokens per micro-batch",
        t.max_tokens,
        needed / 2**30,
        budget / 2**30,
        tokens,
    )
    found["max_tokens_lowered_from"] = t.max_tokens
    return cfg.model_copy(update={"training": t.model_copy(update=change)}), found
