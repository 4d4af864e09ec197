"""Preference tuning with DPO (TRL's DPOTrainer) on a model the training recipe has set up (its method applied),
so that DPO trains what the configured method trains and saves it the same way."""

from __future__ import annotations

from pathlib import Path

import torch
from datasets import Dataset
from transformers.trainer_callback import PrinterCallback
from trl import DPOConfig, DPOTrainer

from ..config import DpoConfig
from ..core.precision import Precision


def train_dpo(
    model,
    tokenizer,
    rows: list[dict],
    cfg: DpoConfig,
    out_dir: Path,
    *,
    seed: int,
    compute: Precision,
    max_steps: int = -1,
    batch_size: int = 4,
    quiet: bool = False,
) -> dict:
    """DPO on conversational preference rows ({prompt, chosen, rejected} message lists). The reference model is
    the base under a PEFT adapter, else TRL's frozen copy of the model as given. Returns the trained model and
    the logged losses and reward margins."""
    args = DPOConfig(
        output_dir=str(out_dir / "checkpoints"),
        beta=cfg.beta,
        learning_rate=cfg.learning_rate,
        num_train_epochs=cfg.epochs,
        max_steps=max_steps,
        per_device_train_batch_size=batch_size,
        seed=seed,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        disable_tqdm=quiet,
        use_cpu=not torch.cuda.is_available(),
        max_length=512,
        **compute.trainer_flags(),
    )
    trainer = DPOTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer)
    if quiet:  # with progress bars off, transformers would print every log dict instead
        trainer.remove_callback(PrinterCallback)
    trainer.train()
    logs = [row for row in trainer.state.log_history if "loss" in row]
    return {
        "model": trainer.model,
        "steps": trainer.state.global_step,
        "loss": [row["loss"] for row in logs],
        "reward_margin": [row.get("rewards/margins") for row in logs],
    }
