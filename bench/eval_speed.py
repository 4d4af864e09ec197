"""Evaluation speed with the embedded model on the BBC demo (CPU unless CUDA is there). Prints one JSON object:

- generation: batched (sorted by length, left-padded, KV cache) vs one example at a time, same greedy settings
  and the evaluation's precision (bf16 autocast where native), on the first --examples records of the demo test
  split;
  with the time of the prompts' forward passes alone, one at a time (no padding, no decoding): work both modes must
  do, so one_at_a_time_s / prompt_pass_s bounds the speed-up any batching can give on this device;
- retention: log-likelihood multiple choice on a --questions subset spread over the four default benchmarks.

Usage: python bench/eval_speed.py [--examples 64] [--batch-size 16] [--questions 200]"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import replace

import torch

from deftune import config, data
from deftune.core import models
from deftune.core.inference import DecodingSettings, generate_detailed
from deftune.core.precision import choose as choose_precision
from deftune.evaluate import retention


def _timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


@torch.no_grad()
def _prompt_passes(model, tokenizer, prompts: list[str]) -> None:
    """One forward pass per prompt (what prefilling the KV cache costs, with no padding)."""
    for prompt in prompts:
        ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"].to(model.device)
        model(input_ids=ids, use_cache=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--questions", type=int, default=200)
    args = parser.parse_args()

    cfg = config.Config()
    model, tokenizer = models.load(cfg.model.spec)
    splits = data.load_splits(cfg.data, cfg.run.seed)
    renderer = data.renderer_for(tokenizer, cfg.data, *splits.values())
    prompts = [renderer.prompt_text(r) for r in splits["test"].records[: args.examples]]
    settings = DecodingSettings(max_new_tokens=cfg.evaluation.max_new_tokens, batch_size=args.batch_size)
    load_before = os.getloadavg()[0]

    benchmarks = list(cfg.evaluation.retention_benchmarks)
    ev = cfg.evaluation.model_copy(
        update={"retention_questions": args.questions // len(benchmarks), "perplexity_documents": 0}
    )
    compute = choose_precision(cfg.model.precision)
    with compute.autocast():
        batched, batched_s = _timed(lambda: generate_detailed(model, tokenizer, prompts, settings))
        single_settings = replace(settings, batch_size=1)
        single, single_s = _timed(
            lambda: [generate_detailed(model, tokenizer, [p], single_settings)[0] for p in prompts]
        )
        _, prompt_s = _timed(lambda: _prompt_passes(model, tokenizer, prompts))
        measured, retention_s = _timed(lambda: retention.measure(model, tokenizer, ev, cfg.run.seed))
    print(
        json.dumps(
            {
                "model": cfg.model.spec,
                "device": "cuda" if torch.cuda.is_available() else f"cpu ({os.cpu_count()} cores)",
                "torch_threads": torch.get_num_threads(),
                "python": platform.python_version(),
                "precision": compute.name,
                "load_average_1min": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
                "generation": {
                    "examples": len(prompts),
                    "batch_size": args.batch_size,
                    "max_new_tokens": settings.max_new_tokens,
                    "generated_tokens": sum(g.tokens for g in batched),
                    "batched_s": round(batched_s, 2),
                    "one_at_a_time_s": round(single_s, 2),
                    "speedup": round(single_s / batched_s, 2),
                    "prompt_pass_s": round(prompt_s, 2),
                    "speedup_bound": round(single_s / prompt_s, 2),
                    "identical_outputs": sum(a.text == b.text for a, b in zip(batched, single)) / len(prompts),
                },
                "retention": {
                    "questions": len(measured.metrics["all"].rows),
                    "benchmarks": benchmarks,
                    "batch_size": ev.batch_size,
                    "seconds": round(retention_s, 1),
                    "under_3_minutes": retention_s < 180,
                    "accuracy": round(measured.metrics["all"].value, 4),
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
