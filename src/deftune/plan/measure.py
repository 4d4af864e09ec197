"""Measure one training configuration in a fresh process: `python -m deftune.plan.measure SPEC_JSON`.

SPEC_JSON holds the resolved config (`config`), the micro-batch shape (`rows`, `seq_len`, `trained_per_row`) and
the number of optimizer steps (`steps`); with `"baseline": true` the process only imports what a measured run
imports and reports its resident memory. The steps set the model up through the training recipe's own steps
(dropout, method, L2-SP) and use the engine's trained-position loss, its optimizer groups, the Trainer's optimizer
class and accelerate's mixed precision, on a synthetic micro-batch of exactly the planned shape. On CPU, freed
memory is returned to the system at once (`train.memory.return_freed_memory`) unless `"glibc_default": true`. Prints one JSON object: memory after loading, the peak
of loading and of the steps (resident set on CPU, allocated CUDA memory on GPU), and step times.
"""

from __future__ import annotations

import json
import logging
import resource
import sys
import tempfile
import time
import warnings
from pathlib import Path

import accelerate
import peft  # noqa: F401  (imported by every PEFT method: part of the baseline a measured run pays)
import torch
from transformers import Trainer

from .. import config, methods
from ..core import models
from ..core.precision import choose as choose_precision
from ..train import memory, recipe
from ..train.engine import parameter_groups, trained_position_loss, training_args
from ..train.terms import l2sp


def _status_bytes(field: str) -> int:
    """A memory figure of this process from /proc/self/status (VmRSS, VmHWM), in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> bool:
    """Reset the kernel's resident-set high-water mark (VmHWM, Linux ≥ 4.0); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _max_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def synthetic_batch(rows: int, seq_len: int, trained_per_row: int, vocab: int, pad_id: int, seed: int = 0) -> dict:
    """A padded micro-batch like the collator's: `rows` × `seq_len` random tokens, each row training a block of
    `trained_per_row` positions at a different place (so the positions whose vocabulary projection is computed
    number min(seq_len - 1, rows × trained_per_row), the most such a batch can need), and the last row ending in
    one padding token so that an attention mask is built, as for real padded batches."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (rows, seq_len), generator=generator)
    labels = torch.full_like(ids, -100)
    mask = torch.ones_like(ids)
    if rows > 1:
        ids[-1, -1], mask[-1, -1] = pad_id, 0
    span = seq_len - 1 - (rows > 1)  # label positions 1 .. span, clear of the padding
    for row in range(rows):
        for j in range(trained_per_row):
            position = 1 + (span - 1 - row * trained_per_row - j) % span
            labels[row, position] = ids[row, position]
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def _optimizer(cfg, model, terms, workdir: Path):
    """The optimizer the engine's Trainer builds: its optimizer class and settings, the engine's groups."""
    args = training_args(
        cfg, workdir, False, 1, 1, quiet=True, compute=choose_precision(cfg.model.precision, warn=False)
    )
    cls, kwargs = Trainer.get_optimizer_cls_and_kwargs(args, model)
    return cls(parameter_groups(model, terms, cfg.training.weight_decay), **kwargs)


def measure(spec: dict) -> dict:
    """Run the configured steps and return peak memory and step times (see the module docstring)."""
    cfg = config.validate(spec["config"])
    cuda = torch.cuda.is_available()
    returned = False if spec.get("glibc_default") else memory.return_freed_memory()
    torch.manual_seed(cfg.run.seed)
    resolved = models.resolve(cfg.model.spec)
    model = models.load_model(
        resolved,
        dtype=cfg.model.dtype,
        revision=cfg.model.revision,
        trust_remote_code=cfg.model.trust_remote_code,
        quantize_4bit=methods.get(cfg.method.name).quantized_base,
    )
    setup = recipe.set_up_model(cfg, model)
    model = setup.model
    if cfg.training.gradient_checkpointing:
        enable = getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
        enable()
    terms = [term for term in [l2sp.build(model, setup.base_params, cfg.training)] if term]
    model.train()
    with tempfile.TemporaryDirectory() as tmp:  # before the Accelerator: TrainingArguments resets its state
        optimizer = _optimizer(cfg, model, terms, Path(tmp))
    accelerator = accelerate.Accelerator(
        mixed_precision=choose_precision(cfg.model.precision, warn=False).accelerate, cpu=not cuda
    )
    model, optimizer = accelerator.prepare(model, optimizer)
    batch = synthetic_batch(
        spec["rows"],
        spec["seq_len"],
        spec["trained_per_row"],
        model.config.vocab_size,
        model.config.pad_token_id or 0,
        cfg.run.seed,
    )
    batch = {k: v.to(accelerator.device) for k, v in batch.items()}
    if cuda:
        loaded, loading_peak = torch.cuda.memory_allocated(), torch.cuda.max_memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    else:
        loaded, loading_peak, reset = _status_bytes("VmRSS"), _max_rss(), _reset_peak()
    seconds = []
    for _ in range(spec["steps"]):
        start = time.perf_counter()
        loss, _ = trained_position_loss(model, batch, None)
        for term in terms:
            loss = loss + term.loss(model, batch)
        accelerator.backward(loss)
        accelerator.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], cfg.training.max_grad_norm)
        optimizer.step()
        model.zero_grad()
        if cuda:
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
    if cuda:
        training_peak = torch.cuda.max_memory_allocated()
    else:  # the high-water mark since the reset, or (where it could not be reset) since the process started
        training_peak = _status_bytes("VmHWM") if reset else _max_rss()
    return {
        "device": "cuda" if cuda else "cpu",
        "threads": torch.get_num_threads(),
        "freed_memory_returned": returned,
        "loaded_bytes": loaded,
        "loading_peak_bytes": loading_peak,
        "training_peak_bytes": training_peak,
        "peak_bytes": max(loading_peak, training_peak),
        "step_seconds": seconds,
        "last_loss": float(loss),
    }


def baseline() -> dict:
    """Resident memory of a process that has imported what a measured run (and the engine) imports (this
    module's imports) and loaded nothing."""
    return {"rss_bytes": _status_bytes("VmRSS"), "peak_bytes": _max_rss()}


def main() -> None:
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    spec = json.loads(sys.argv[1])
    print(json.dumps(baseline() if spec.get("baseline") else measure(spec)))


if __name__ == "__main__":
    main()
