"""Measure one training configuration in a fresh process: `python -m deftune.train.plan_worker SPEC_JSON`.

SPEC_JSON holds the resolved config (`config`), the micro-batch shape (`rows`, `seq_len`, `trained_per_row`) and
the number of optimizer steps (`steps`); with `"baseline": true` the process only imports what a measured run
imports and reports its resident memory. The steps use the engine's own pieces — model loading, method,
attention dropout, L2-SP, trained-position loss, the Trainer's optimizer and accelerate's mixed precision — on a
synthetic micro-batch of exactly the planned shape. On CPU, freed memory is returned to the system at once
(`plan.return_freed_memory`) unless `"glibc_default": true`. Prints one JSON object: memory after loading, the peak
of loading and of the steps (resident set on CPU, allocated CUDA memory on GPU), and step times.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import torch


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


def _optimizer(cfg, model, workdir: Path):
    """The optimizer the engine's Trainer would build for these training arguments."""
    from transformers import Trainer

    from ..core.precision import choose as choose_precision
    from .trainer import BatchPlan, _training_args

    args = _training_args(cfg, workdir, False, BatchPlan(1, 1.0, 1.0, 1), quiet=True,
                          compute=choose_precision(cfg.model.precision, warn=False))
    cls, kwargs = Trainer.get_optimizer_cls_and_kwargs(args, model)
    decay = [p for p in model.parameters() if p.requires_grad]
    return cls([{"params": decay, "weight_decay": cfg.training.weight_decay}], **kwargs)


def measure(spec: dict) -> dict:
    """Run the configured steps and return peak memory and step times (see the module docstring)."""
    import tempfile

    from accelerate import Accelerator

    from .. import config
    from ..core import models
    from ..core.precision import choose as choose_precision
    from . import methods, plan
    from .regularize import L2SP, targeted_dropout
    from .trainer import trained_position_loss

    cfg = config.validate(spec["config"])
    cuda = torch.cuda.is_available()
    returned = False if spec.get("glibc_default") else plan.return_freed_memory()
    torch.manual_seed(cfg.run.seed)
    resolved = models.resolve(cfg.model.spec)
    model = models.load_model(resolved, dtype=cfg.model.dtype, revision=cfg.model.revision,
                              trust_remote_code=cfg.model.trust_remote_code,
                              quantize_4bit=cfg.method.name == "qlora")
    targeted_dropout(model, cfg.training.dropout)
    base_params = {id(p) for p in model.parameters()}
    model = methods.apply(model, cfg.method, cfg.training.dropout)
    if cfg.training.gradient_checkpointing:
        model.enable_input_require_grads()
        enable = getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
        enable()
    l2sp = None
    if cfg.training.regularization == "l2sp":
        l2sp = L2SP([(n, p) for n, p in model.named_parameters() if id(p) in base_params], cfg.training.l2sp)
    model.train()
    with tempfile.TemporaryDirectory() as tmp:
        optimizer = _optimizer(cfg, model, Path(tmp))  # before the Accelerator: TrainingArguments resets its state
    accelerator = Accelerator(mixed_precision=choose_precision(cfg.model.precision, warn=False).accelerate,
                              cpu=not cuda)
    model, optimizer = accelerator.prepare(model, optimizer)
    batch = synthetic_batch(spec["rows"], spec["seq_len"], spec["trained_per_row"], model.config.vocab_size,
                            model.config.pad_token_id or 0, cfg.run.seed)
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
        if l2sp:
            loss = loss + l2sp.penalty()
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
    return {"device": "cuda" if cuda else "cpu", "threads": torch.get_num_threads(), "freed_memory_returned": returned,
            "loaded_bytes": loaded, "loading_peak_bytes": loading_peak, "training_peak_bytes": training_peak,
            "peak_bytes": max(loading_peak, training_peak), "step_seconds": seconds, "last_loss": float(loss)}


def baseline() -> dict:
    """Resident memory of a process that has imported what a measured run (and the engine) imports and loaded
    nothing."""
    import accelerate  # noqa: F401
    import peft  # noqa: F401
    from transformers import LlamaForCausalLM, Trainer  # noqa: F401

    from ..core import models  # noqa: F401
    from . import methods, trainer  # noqa: F401

    return {"rss_bytes": _status_bytes("VmRSS"), "peak_bytes": _max_rss()}


def main() -> None:
    import logging
    import os
    import warnings

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    spec = json.loads(sys.argv[1])
    print(json.dumps(baseline() if spec.get("baseline") else measure(spec)))


if __name__ == "__main__":
    main()
