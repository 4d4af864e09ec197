"""Plan accuracy: `deftune plan`'s estimated peak memory against the measured peak on the embedded model
(SmolLM2-135M-Instruct), for every method × {fp32, bf16} × {gradient checkpointing off, on}, each configuration run
for a few optimizer steps in a fresh process (peak resident memory on CPU, max allocated CUDA memory on GPU).

On CPU each configuration runs twice: with freed memory returned to the system at once (`plan.return_freed_memory`:
the memory the step needs, which the estimate is checked against) and with glibc's allocator as is (its heap keeps
freed memory; reported beside, with the error against it, and its step times).

Prints one JSON object: the workload, the process baseline, per configuration the estimated and measured peaks
(MiB), the errors in %, step times, how many configurations are within ±15%, and the seed guide's claims checked.

Usage: python bench/plan_accuracy.py [--max-length 256] [--max-tokens 1536] [--steps 3]  (the config's defaults)
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

from deftune import config
from deftune.plan import compare as plan_compare
from deftune.plan.compare import label

MIB = 2**20
TARGET_PCT = 15


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = config.Config()
    parser.add_argument(
        "--max-length", type=int, default=defaults.data.max_length, help="data.max_length (tokens per example)"
    )
    parser.add_argument(
        "--max-tokens",
        type=int,
        default=defaults.training.max_tokens,
        help="training.max_tokens (tokens per micro-batch)",
    )
    parser.add_argument("--steps", type=int, default=3, help="optimizer steps per measured configuration")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    cfg = config.load(None, [f"data.max_length={args.max_length}", f"training.max_tokens={args.max_tokens}"])
    started = time.monotonic()
    result = plan_compare.make(cfg, compare=True, measure_steps=args.steps)
    rows = []
    for row in result.rows:
        est, measured = row.estimate, row.measured or {}
        rows.append(
            {
                "configuration": label(est),
                "trainable_share_pct": round(100 * est.parameters["trainable_share"], 3),
                "estimated_peak_mib": round(est.peak_bytes / MIB, 1),
                "measured_peak_mib": round(row.measured_peak / MIB, 1) if row.measured_peak else None,
                "error_pct": round(row.error_pct(), 1) if row.measured_peak else None,
                "glibc_default_peak_mib": round(row.glibc_peak / MIB, 1) if row.glibc_peak else None,
                "glibc_default_error_pct": round(row.error_pct(row.glibc_peak), 1) if row.glibc_peak else None,
                "estimated_activations_mib": round(est.memory_bytes["activations"] / MIB, 1),
                "estimated_s_per_step": round(est.seconds_per_step, 2) if est.seconds_per_step else None,
                "measured_s_per_step": round(measured["seconds_per_step"], 2)
                if "seconds_per_step" in measured
                else None,
                "failed": measured.get("error"),
            }
        )
    errors = [abs(r["error_pct"]) for r in rows if r["error_pct"] is not None]
    glibc = [r["glibc_default_error_pct"] for r in rows if r["glibc_default_error_pct"] is not None]
    print(
        json.dumps(
            {
                "model": cfg.model.spec,
                "device": result.device,
                "threads": torch.get_num_threads(),
                "workload": {
                    "max_length_tokens": args.max_length,
                    "max_tokens_per_micro_batch": args.max_tokens,
                    "trained_tokens_per_example": result.trained_per_row,
                    "steps": args.steps,
                },
                "process_baseline_mib": round(result.baseline_bytes / MIB, 1),
                "configurations": rows,
                "within_15pct": f"{sum(e <= TARGET_PCT for e in errors)}/{len(errors)}",
                "max_abs_error_pct": max(errors, default=None),
                "glibc_default_error_pct_range": [min(glibc), max(glibc)] if glibc else None,
                "seed_claims": plan_compare.seed_claims(result.rows),
                "summary": plan_compare.why(result.rows),
                "seconds": round(time.monotonic() - started, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
