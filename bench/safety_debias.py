"""Adversarial debiasing on the BBC demo: the same short LoRA fine-tuning twice — with the adversary as a probe
only (weight 0: it learns to predict gender from the pooled hidden states, the model is not pushed) and with the
reversed gradient (weight --weight) — reporting the adversary's accuracy against the majority-group rate, the
held-out probe (a fresh cross-validated logistic regression on the answer-position states of validation records,
tuned vs base) and the validation task metric of each. Records are gendered by the audit's lexicon (those
mentioning only female or only male terms). Prints one JSON object.

Usage: python bench/safety_debias.py [--model embedded:smollm2-135m-instruct] [--train 300] [--validation 200]
       [--steps 40] [--weight 1.0]"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from deftune import config
from deftune.train.trainer import train


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="embedded:smollm2-135m-instruct")
    parser.add_argument("--train", type=int, default=300)
    parser.add_argument("--validation", type=int, default=200)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--weight", type=float, default=1.0)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="deftune-debias-"))
    figures = {}
    for name, weight in (("probe_only", 0.0), ("debiased", args.weight)):
        cfg = config.load(None, [f"model.spec={args.model}", f"run.root={root}", f"run.name={name}",
                                 f"data.max_train_examples={args.train}",
                                 f"data.max_validation_examples={args.validation}",
                                 f"training.max_steps={args.steps}", "training.early_stopping.task_examples=64",
                                 f"training.eval_steps={args.steps}", f"safety.adversary_weight={weight}",
                                 "safety.adversary_probe=true"])
        started = time.perf_counter()
        result = train(cfg, quiet=True)
        adversary = json.loads((root / name / "train" / "adversary.json").read_text())
        final = result.early_stopping.get("final", {})
        figures[name] = {"adversary_weight": weight, "adversary_final_accuracy": adversary["final_accuracy"],
                         "adversary_overall_accuracy": adversary["overall_accuracy"],
                         "chance_accuracy": adversary["chance_accuracy"], "group_rows": adversary["group_rows"],
                         "probe": adversary["probe"],
                         "validation_loss": result.validation_loss,
                         "task_metric": {k: v for k, v in final.items() if k not in ("eval_loss", "eval_composite")
                                         and not k.startswith(("eval_runtime", "eval_samples", "eval_steps"))},
                         "seconds": round(time.perf_counter() - started, 1)}
    print(json.dumps({"model": args.model, "train_examples": args.train, "steps": args.steps, **figures}, indent=2))


if __name__ == "__main__":
    main()
