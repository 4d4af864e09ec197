"""Fine-tuning through the Hugging Face Trainer, configured by deftune: pre-rendered examples with loss masks,
the configured method, per-step metrics in metrics.jsonl, the result saved in Hugging Face formats."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from .. import data, models, runs
from ..config import Config
from ..data.render import IGNORE, Rendered
from . import methods

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    run_dir: str
    output_dir: str  # the adapter (PEFT format) or the full model (safetensors)
    method: str
    examples: dict[str, int]
    dropped_too_long: dict[str, int]
    max_length: int
    epochs: float
    steps: int
    parameters: dict[str, float]
    first_loss: float | None
    last_loss: float | None
    validation_loss: float | None
    seconds: float
    tokens: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)


class Collator:
    """Pads a list of rendered examples into a batch; padding is masked out of attention and loss."""

    def __init__(self, pad_token_id: int):
        self.pad = pad_token_id

    def __call__(self, examples: list[Rendered]) -> dict[str, torch.Tensor]:
        width = max(len(e) for e in examples)
        ids = torch.full((len(examples), width), self.pad, dtype=torch.long)
        labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(examples), width), dtype=torch.long)
        for row, example in enumerate(examples):
            n = len(example)
            ids[row, :n] = torch.tensor(example.input_ids)
            labels[row, :n] = torch.tensor(example.labels)
            mask[row, :n] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def _metrics_callback(path: Path):
    from transformers import TrainerCallback

    class MetricsLog(TrainerCallback):
        """Appends every logged dict (training steps and evaluations) to metrics.jsonl as it happens."""

        def __init__(self):
            self.start = time.monotonic()

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_world_process_zero or not logs:
                return
            row = {"step": state.global_step, "epoch": state.epoch,
                   "elapsed_s": round(time.monotonic() - self.start, 3), **logs}
            with path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")

    return MetricsLog()


def _training_args(cfg: Config, output_dir: Path, has_validation: bool, quiet: bool):
    from transformers import TrainingArguments

    t = cfg.training
    return TrainingArguments(
        output_dir=str(output_dir / "checkpoints"),
        num_train_epochs=t.epochs, max_steps=t.max_steps, learning_rate=t.learning_rate,
        lr_scheduler_type=t.lr_scheduler, warmup_steps=t.warmup_ratio, weight_decay=t.weight_decay,
        per_device_train_batch_size=t.batch_size, per_device_eval_batch_size=cfg.evaluation.batch_size,
        gradient_accumulation_steps=t.gradient_accumulation, max_grad_norm=t.max_grad_norm,
        bf16=t.bf16, activation_checkpointing=t.gradient_checkpointing,
        use_cpu=not torch.cuda.is_available(), dataloader_pin_memory=torch.cuda.is_available(),
        logging_steps=t.logging_steps, logging_first_step=True,
        eval_strategy="steps" if (has_validation and t.eval_steps) else "no", eval_steps=t.eval_steps,
        save_strategy="no", report_to=[], seed=cfg.run.seed, data_seed=cfg.run.seed,
        remove_unused_columns=False, disable_tqdm=quiet, dataloader_num_workers=0,
    )


def train(cfg: Config, *, overwrite: bool = False, quiet: bool = False) -> TrainResult:
    """Fine-tune `cfg.model` on `cfg.data` with `cfg.method`; artifacts go to <run>/train/."""
    from transformers import Trainer, set_seed

    started = time.monotonic()
    set_seed(cfg.run.seed)
    run_dir = runs.prepare(cfg, "train", overwrite=overwrite)
    out = run_dir / "train"
    metrics_path = out / "metrics.jsonl"
    metrics_path.unlink(missing_ok=True)

    splits = data.load_splits(cfg.data, cfg.run.seed)
    runs.write_json(run_dir / "data" / "split.json",
                    {name: [r.id for r in ds.records] for name, ds in splits.items()})
    model, tokenizer = models.load(cfg.model.spec, dtype=cfg.model.dtype, revision=cfg.model.revision,
                                   trust_remote_code=cfg.model.trust_remote_code)
    renderer = data.renderer_for(tokenizer, cfg.data, *splits.values())
    train_set, train_stats = renderer.render_all(splits["train"].records)
    val_set, val_stats = renderer.render_all(splits["validation"].records) if len(splits["validation"]) else ([], None)

    model = methods.apply(model, cfg.method)
    if cfg.training.gradient_checkpointing:
        model.enable_input_require_grads()
    counts = methods.count_parameters(model)
    log.info("method %s: %s", cfg.method.name, counts)

    trainer = Trainer(model=model, args=_training_args(cfg, out, bool(val_set), quiet), train_dataset=train_set,
                      eval_dataset=val_set or None, data_collator=Collator(tokenizer.pad_token_id),
                      callbacks=[_metrics_callback(metrics_path)])
    trainer.train()
    validation_loss = trainer.evaluate()["eval_loss"] if val_set else None

    output_dir = out / ("adapter" if cfg.method.name == "lora" else "model")
    model.save_pretrained(output_dir, safe_serialization=True)
    tokenizer.save_pretrained(output_dir)

    losses = [row["loss"] for row in map(json.loads, metrics_path.read_text().splitlines()) if "loss" in row]
    result = TrainResult(
        run_dir=str(run_dir), output_dir=str(output_dir), method=cfg.method.name,
        examples={"train": len(train_set), "validation": len(val_set), "test": len(splits["test"])},
        dropped_too_long={"train": len(train_stats.too_long),
                          "validation": len(val_stats.too_long) if val_stats else 0},
        max_length=cfg.data.max_length, epochs=cfg.training.epochs, steps=trainer.state.global_step,
        parameters={"trainable": counts.trainable, "total": counts.total, "trainable_share": counts.share},
        first_loss=losses[0] if losses else None, last_loss=losses[-1] if losses else None,
        validation_loss=validation_loss, seconds=round(time.monotonic() - started, 1),
        tokens={"train_total": train_stats.total_tokens, "train_trained": train_stats.trained_tokens},
    )
    runs.write_json(out / "result.json", result.to_json())
    return result
