"""Training throughput: deftune's defaults against TRL's SFTTrainer, same model, data, examples and precision.

SmolLM2-135M-Instruct (embedded), BBC demo data, LoRA (r 16, all linear layers), in the precision
`model.precision=auto` picks on this machine (or --precision). Each arm runs in a fresh process, so its peak
resident memory is its own:
- deftune: the engine with its defaults (token-budget batches of similar lengths, loss at trained positions only,
  head dropout on attention);
- trl_default: SFTTrainer as documented by default: per-device batch 8, padded, completion-only loss;
- trl_packed: SFTTrainer as a TRL expert would configure it: packing (best-fit decreasing) with padding-free
  batches of about deftune's token budget (max_length = data.max_length, batch = max_tokens // max_length), and
  TRL's default gradient checkpointing;
- trl_packed_no_checkpointing: the same without gradient checkpointing (faster where memory allows).
LoRA as PEFT defaults it otherwise (no LoRA dropout) in every TRL arm. Prints one JSON object: useful (non-padding)
tokens/s of each, deftune's ratio to the fastest TRL arm and its peak memory against that arm's, padding share,
peak resident memory, and model FLOP/s (4N + 2N_trainable per token, the LM head counted at every position as
MFU conventions do: deftune projects only trained positions, so its figure exceeds the hardware's share) over the
machine's measured matmul peak in that precision.

Usage: python bench/train_throughput.py [--examples 96] [--precision auto|fp32|bf16]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

from deftune import config, data
from deftune.core import models
from deftune.core.precision import choose as choose_precision
from deftune.core.precision import hardware, matmul_flops_per_s
from deftune.train import recipe

ARMS = ("deftune", "trl_default", "trl_packed", "trl_packed_no_checkpointing")


class PeakRSS:
    """Samples this process's resident memory in a thread: the peak while the block runs."""

    def __enter__(self):
        self.peak, self.running = 0, True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self):
        page = os.sysconf("SC_PAGE_SIZE")
        while self.running:
            with open("/proc/self/statm") as fh:
                self.peak = max(self.peak, int(fh.read().split()[1]) * page)
            time.sleep(0.05)

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()

    @property
    def mib(self) -> float:
        return round(self.peak / 2**20, 1)


def model_flops(params: int, trainable: int, tokens: int) -> float:
    """Forward 2N, backward through the frozen weights 2N, weight gradients 2N_trainable, per token."""
    return (4 * params + 2 * trainable) * tokens


def _config(args) -> config.Config:
    return config.load(
        None,
        [
            f"data.max_train_examples={args.examples}",
            "data.split.validation=0",
            f"model.precision={args.precision}",
            "method.name=lora",
        ],
    )


def run_deftune(cfg, workdir: Path) -> dict:
    run_cfg = config.validate(
        {**cfg.model_dump(mode="json"), "run": {"root": str(workdir), "name": "deftune", "seed": cfg.run.seed}}
    )
    with PeakRSS() as rss:
        result = recipe.train(run_cfg, quiet=True)
    rows = [json.loads(r) for r in (Path(result.run_dir) / "train" / "metrics.jsonl").read_text().splitlines()]
    runtime = next(r["train_runtime"] for r in rows if "train_runtime" in r)
    steps = [r for r in rows if "padding_share" in r]
    computed = sum(r["tokens_per_s"] for r in steps)
    useful = sum(r["useful_tokens_per_s"] for r in steps)
    return {
        "seconds": runtime,
        "useful_tokens": result.tokens["train_total"],
        "optimizer_steps": result.steps,
        "padding_share": 1 - useful / computed if computed else None,
        "peak_rss_mib": rss.mib,
        "trainable": int(result.parameters["trainable"]),
        "total": int(result.parameters["total"]),
    }


def run_trl(cfg, workdir: Path, packed: bool, checkpointing: bool = True) -> dict:
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    splits = data.load_splits(cfg.data, cfg.run.seed)
    model, tokenizer = models.load(cfg.model.spec)
    renderer = data.renderer_for(tokenizer, cfg.data, *splits.values())
    rows = [
        {
            "prompt": [{"role": "user", "content": renderer.classification_prompt(r)}],
            "completion": [{"role": "assistant", "content": r.label}],
        }
        for r in splits["train"].records
    ]
    batch = max(1, cfg.training.max_tokens // cfg.data.max_length) if packed else 8
    args = SFTConfig(
        output_dir=str(workdir / "trl"),
        per_device_train_batch_size=batch,
        num_train_epochs=1,
        learning_rate=cfg.training.learning_rate,
        use_cpu=not torch.cuda.is_available(),
        max_length=cfg.data.max_length,
        packing=packed,
        padding_free=packed,
        report_to=[],
        logging_steps=10,
        save_strategy="no",
        disable_tqdm=True,
        seed=cfg.run.seed,
        dataloader_pin_memory=False,
        gradient_checkpointing=checkpointing,
        **choose_precision(cfg.model.precision).trainer_flags(),
    )
    lora = LoraConfig(
        r=cfg.method.lora.r, lora_alpha=cfg.method.lora.alpha, target_modules="all-linear", task_type="CAUSAL_LM"
    )  # PEFT's defaults otherwise (no LoRA dropout: its fastest)
    sft = SFTTrainer(
        model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer, peft_config=lora
    )
    counts = {"real": 0, "computed": 0}
    collate = sft.data_collator

    def counting(features):
        made = collate(features)
        mask = made.get("attention_mask")
        real = int(mask.sum()) if mask is not None else made["input_ids"].numel()  # padding-free: all real
        counts["real"] += real
        counts["computed"] += made["input_ids"].numel()
        return made

    sft.data_collator = counting
    with PeakRSS() as rss:
        output = sft.train()
    trainable = sum(p.numel() for p in sft.model.parameters() if p.requires_grad)
    return {
        "seconds": output.metrics["train_runtime"],
        "useful_tokens": counts["real"],
        "optimizer_steps": sft.state.global_step,
        "per_device_batch": batch,
        "gradient_checkpointing": checkpointing,
        "padding_share": 1 - counts["real"] / counts["computed"],
        "peak_rss_mib": rss.mib,
        "trainable": trainable,
        "total": sum(p.numel() for p in sft.model.parameters()),
    }


def run_arm(arm: str, args) -> dict:
    torch.set_num_threads(os.cpu_count() or 1)
    cfg = _config(args)
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(sys.stderr):  # stdout: the JSON only
        if arm == "deftune":
            return run_deftune(cfg, Path(tmp))
        return run_trl(cfg, Path(tmp), packed=arm.startswith("trl_packed"), checkpointing=arm != ARMS[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=96)
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    parser.add_argument("--arm", choices=ARMS, help="run one arm in this process and print its JSON")
    args = parser.parse_args()
    if args.arm:
        print(json.dumps(run_arm(args.arm, args)))
        return
    compute = choose_precision(args.precision)
    results = {}
    for arm in ARMS:  # a fresh process each: peak memory is the arm's own
        done = subprocess.run(
            [sys.executable, __file__, "--arm", arm, "--examples", str(args.examples), "--precision", args.precision],
            capture_output=True,
            text=True,
            check=True,
        )
        results[arm] = json.loads(done.stdout.strip().splitlines()[-1])
    peak = matmul_flops_per_s(compute.name, compute.device, 2048, 2048, 2048)
    for r in results.values():
        r["useful_tokens_per_s"] = r["useful_tokens"] / r["seconds"]
        r["model_flops_per_s"] = model_flops(r["total"], r["trainable"], r["useful_tokens"]) / r["seconds"]
        r["mfu_vs_matmul_peak"] = r["model_flops_per_s"] / peak
    anchor = max(ARMS[1:], key=lambda a: results[a]["useful_tokens_per_s"])
    print(
        json.dumps(
            {
                "examples": args.examples,
                "device": compute.device,
                "threads": os.cpu_count(),
                "cpu_capability": hardware().cpu_capability,
                "precision": compute.to_json(),
                "matmul_peak_flops_per_s": peak,
                "strongest_anchor": anchor,
                "ratio_to_strongest_anchor": results["deftune"]["useful_tokens_per_s"]
                / results[anchor]["useful_tokens_per_s"],
                "memory_ratio_to_strongest_anchor": results["deftune"]["peak_rss_mib"]
                / results[anchor]["peak_rss_mib"],
                **results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
