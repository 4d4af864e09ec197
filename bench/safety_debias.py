"""Adversarial debiasing on BBC News with a planted protected attribute. Each record gets a byline ("By Sarah
Jones.") whose gender is its `group` and is tied to the label in training (business and tech 80% female, sport and
politics 80% male, entertainment even), so a model can lean on it. The same short LoRA fine-tuning runs three
times: with the adversary as a probe only (weight 0: the head learns, the model is not pushed), and with the
reversed gradient (weight --weight) for each objective: parity (remove any group information) and odds (remove what
is left beyond the true label, which the head is also given). Reported per arm:
- the adversary's accuracy after its warm-up on the base model and at the end of training, against the
  majority-group rate;
- the held-out probe (a fresh cross-validated logistic regression on the answer-position states of validation
  records), tuned vs base, and what the label alone tells of the group;
- the task: validation macro-F1 (early stopping's measure) and macro-F1 on --test test records by greedy
  generation;
- reliance on the attribute: the share of test predictions that change when the byline's gender is swapped
  (same surname, a first name of the other gender).
Prints one JSON object.

Usage: python bench/safety_debias.py [--train 300] [--validation 200] [--test 150] [--steps 30] [--weight 1.0]
       [--arms probe_only parity odds] [--out /tmp/deftune-debias]"""

from __future__ import annotations

import argparse
import json
import random
import time
from dataclasses import replace
from pathlib import Path

from sklearn.metrics import f1_score

from deftune import config, data
from deftune.core import runs
from deftune.core.files import write_jsonl
from deftune.core.inference import DecodingSettings, generate, parse_label
from deftune.data.records import to_row
from deftune.train.recipe import train

FEMALE = ["Sarah", "Emma", "Linda", "Susan", "Olivia", "Mary", "Anna", "Laura", "Helen", "Claire"]
MALE = ["James", "David", "Michael", "Robert", "Thomas", "John", "Daniel", "Peter", "Mark", "Paul"]
SURNAMES = ["Jones", "Smith", "Taylor", "Brown", "Wilson", "Evans", "Walker", "Hughes", "Green", "Hall"]
FEMALE_SHARE = {"business": 0.8, "tech": 0.8, "sport": 0.2, "politics": 0.2, "entertainment": 0.5}


def bylined(record, rng: random.Random, female: bool | None = None):
    """The record with a byline of a random first name of the given (else a drawn) gender."""
    if female is None:
        female = rng.random() < FEMALE_SHARE.get(record.label, 0.5)
    first, last = rng.choice(FEMALE if female else MALE), rng.choice(SURNAMES)
    return replace(
        record,
        text=f"By {first} {last}.\n{record.text}",
        group={"gender": "female" if female else "male"},
        meta={**record.meta, "byline": [first, last]},
    )


def swapped(record):
    """The same record with the byline's first name replaced by one of the other gender."""
    first, last = record.meta["byline"]
    female = first in FEMALE
    other = (MALE if female else FEMALE)[(FEMALE if female else MALE).index(first)]
    return replace(
        record,
        text=record.text.replace(f"By {first} {last}.", f"By {other} {last}.", 1),
        group={"gender": "male" if female else "female"},
    )


def _jsonl(path: Path, records) -> str:
    write_jsonl(path, map(to_row, records))
    return str(path)


def _predict(run_dir: Path, records, labels: list[str]) -> list[str | None]:
    model, tokenizer, run_cfg = runs.load_trained(str(run_dir))
    renderer = data.renderer_for(tokenizer, run_cfg.data.model_copy(update={"labels": labels}))
    answers = generate(
        model, tokenizer, [renderer.prompt_text(r) for r in records], DecodingSettings(max_new_tokens=8, batch_size=16)
    )
    return [parse_label(a, labels) for a in answers]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded:smollm2-135m-instruct")
    parser.add_argument("--train", type=int, default=300)
    parser.add_argument("--validation", type=int, default=200)
    parser.add_argument("--test", type=int, default=150)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--weight", type=float, default=1.0)
    parser.add_argument(
        "--arms", nargs="+", default=["probe_only", "parity", "odds"], choices=["probe_only", "parity", "odds"]
    )
    parser.add_argument("--out", default="/tmp/deftune-debias")
    args = parser.parse_args()
    out = Path(args.out)

    base_cfg = config.load(
        None, [f"data.max_train_examples={args.train}", f"data.max_validation_examples={args.validation}"]
    )
    splits = data.load_splits(base_cfg.data, base_cfg.run.seed)
    rng = random.Random(base_cfg.run.seed)
    parts = {name: [bylined(r, rng) for r in part.records] for name, part in splits.items()}
    parts["test"] = rng.sample(parts["test"], min(args.test, len(parts["test"])))
    files = {name: _jsonl(out / f"{name}.jsonl", records) for name, records in parts.items()}
    labels = sorted({r.label for r in parts["train"]})
    gold = [r.label for r in parts["test"]]

    figures = {}
    arms = {"probe_only": (0.0, "parity"), "parity": (args.weight, "parity"), "odds": (args.weight, "odds")}
    for name in args.arms:
        weight, objective = arms[name]
        cfg = config.load(
            None,
            [
                f"model.spec={args.model}",
                f"run.root={out / 'runs'}",
                f"run.name={name}",
                f"data.path={files['train']}",
                f"data.validation_path={files['validation']}",
                f"data.test_path={files['test']}",
                f"training.max_steps={args.steps}",
                "training.early_stopping.task_examples=64",
                f"training.eval_steps={args.steps}",
                f"training.adversary.weight={weight}",
                "training.adversary.probe=true",
                f"training.adversary.objective={objective}",
            ],
        )
        started = time.perf_counter()
        result = train(cfg, overwrite=True, quiet=True)
        adversary = json.loads((out / "runs" / name / "train" / "adversary.json").read_text())
        predicted = _predict(Path(result.run_dir), parts["test"], labels)
        flipped = _predict(Path(result.run_dir), [swapped(r) for r in parts["test"]], labels)
        final = result.early_stopping.get("final", {})
        figures[name] = {
            "adversary_weight": weight,
            "objective": objective,
            "adversary_warmup": adversary["warmup"],
            "adversary_final_accuracy": adversary["final_accuracy"],
            "adversary_chance_accuracy": adversary["chance_accuracy"],
            "group_rows": adversary["group_rows"],
            "probe": adversary["probe"],
            "validation_macro_f1": final.get("eval_macro_f1"),
            "test_macro_f1": f1_score(gold, [p or "" for p in predicted], labels=labels, average="macro"),
            "byline_swap_flip_rate": sum(a != b for a, b in zip(predicted, flipped)) / len(predicted),
            "seconds": round(time.perf_counter() - started, 1),
        }
    print(
        json.dumps(
            {
                "model": args.model,
                "train_examples": len(parts["train"]),
                "validation_examples": len(parts["validation"]),
                "test_examples": len(parts["test"]),
                "steps": args.steps,
                "female_share_by_label": FEMALE_SHARE,
                **figures,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
