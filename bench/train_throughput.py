"""Training throughput: deftune's defaults versus a plain TRL SFTTrainer, same model, data and examples.

SmolLM2-135M-Instruct (embedded), BBC demo data, LoRA, bf16, run in one process twice:
(a) deftune's engine with its defaults (token-budget batches, loss at trained positions only);
(b) TRL's SFTTrainer with per-device batch 8, no length grouping, no packing (completion-only loss).
Prints one JSON object: useful (non-padding) tokens/s of each and their ratio, padding share, peak memory,
and achieved model FLOP/s over the machine's measured bf16 matmul peak.

Usage: python bench/train_throughput.py [--examples 256]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import os
import tempfile
import threading
import time
from pathlib import Path

import torch

from deftune import config, data, models
from deftune.train import trainer as engine


class PeakRSS:
    """Samples this process's resident memory in a thread: the peak of one phase of a longer process."""

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


def bf16_matmul_peak(n: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(n, n, dtype=torch.bfloat16), torch.randn(n, n, dtype=torch.bfloat16)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - start)


def model_flops(params: int, trainable: int, tokens: int) -> float:
    """Forward 2N, backward through the frozen weights 2N, weight gradients 2N_trainable, per token."""
    return (4 * params + 2 * trainable) * tokens


def run_deftune(cfg, workdir: Path) -> dict:
    run_cfg = config.validate({**cfg.model_dump(mode="json"), "run": {"root": str(workdir), "name": "deftune",
                                                                      "seed": cfg.run.seed}})
    with PeakRSS() as rss:
        result = engine.train(run_cfg, quiet=True)
    rows = [json.loads(r) for r in (Path(result.run_dir) / "train" / "metrics.jsonl").read_text().splitlines()]
    runtime = next(r["train_runtime"] for r in rows if "train_runtime" in r)
    steps = [r for r in rows if "padding_share" in r]
    computed = sum(r["tokens_per_s"] for r in steps)
    useful = sum(r["useful_tokens_per_s"] for r in steps)
    return {"seconds": runtime, "useful_tokens": result.tokens["train_total"],
            "padding_share": 1 - useful / computed if computed else None, "peak_rss_mib": rss.mib,
            "trainable": int(result.parameters["trainable"]), "total": int(result.parameters["total"])}


def run_trl(cfg, records, renderer, workdir: Path) -> dict:
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    model, tokenizer = models.load(cfg.model.spec)
    rows = [{"prompt": [{"role": "user", "content": renderer.classification_prompt(r)}],
             "completion": [{"role": "assistant", "content": r.label}]} for r in records]
    args = SFTConfig(output_dir=str(workdir / "trl"), per_device_train_batch_size=8, num_train_epochs=1,
                     learning_rate=cfg.training.learning_rate, bf16=True, use_cpu=not torch.cuda.is_available(),
                     max_length=cfg.data.max_length, packing=False, padding_free=False, report_to=[],
                     logging_steps=10, save_strategy="no", disable_tqdm=True, seed=cfg.run.seed,
                     dataloader_pin_memory=False)
    lora = LoraConfig(r=cfg.method.lora.r, lora_alpha=cfg.method.lora.alpha, target_modules="all-linear",
                      lora_dropout=cfg.training.dropout.attention_modules, task_type="CAUSAL_LM")
    sft = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
                     peft_config=lora)
    counts = {"real": 0, "computed": 0}
    collate = sft.data_collator

    def counting(features):
        batch = collate(features)
        counts["real"] += int(batch["attention_mask"].sum())
        counts["computed"] += batch["attention_mask"].numel()
        return batch

    sft.data_collator = counting
    with PeakRSS() as rss:
        output = sft.train()
    trainable = sum(p.numel() for p in sft.model.parameters() if p.requires_grad)
    return {"seconds": output.metrics["train_runtime"], "useful_tokens": counts["real"],
            "padding_share": 1 - counts["real"] / counts["computed"], "peak_rss_mib": rss.mib,
            "trainable": trainable, "total": sum(p.numel() for p in sft.model.parameters())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=256)
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    cfg = config.load(None, [f"data.max_train_examples={args.examples}", "data.split.validation=0",
                             "training.bf16=true", "method.name=lora"])
    splits = data.load_splits(cfg.data, cfg.run.seed)
    _, tokenizer = models.load(cfg.model.spec)
    renderer = data.renderer_for(tokenizer, cfg.data, *splits.values())
    peak = bf16_matmul_peak()
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(sys.stderr):  # stdout: the JSON only
        results = {"deftune": run_deftune(cfg, Path(tmp)),
                   "trl_sft_batch8": run_trl(cfg, splits["train"].records, renderer, Path(tmp))}
    for r in results.values():
        r["useful_tokens_per_s"] = r["useful_tokens"] / r["seconds"]
        r["model_flops_per_s"] = model_flops(r["total"], r["trainable"], r["useful_tokens"]) / r["seconds"]
        r["mfu_vs_bf16_matmul_peak"] = r["model_flops_per_s"] / peak
    print(json.dumps({
        "examples": args.examples, "device": "cuda" if torch.cuda.is_available() else "cpu",
        "threads": torch.get_num_threads(), "bf16_matmul_peak_flops_per_s": peak,
        "useful_tokens_per_s_ratio": results["deftune"]["useful_tokens_per_s"]
        / results["trl_sft_batch8"]["useful_tokens_per_s"],
        **results,
    }, indent=2))


if __name__ == "__main__":
    main()
