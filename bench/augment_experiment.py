"""Does augmentation help on a small training set, beyond showing the model more tokens? The demo fine-tune
(embedded SmolLM2-135M-Instruct, BBC News, LoRA) on --train examples of the demo split, in three arms: `original`;
`augmented`, with the accepted variants (back-translation + paraphrases, `deftune.data.augment.augment_split`, so
variants never come from or near validation/test records); and the control `duplicated`, where each accepted
variant is replaced by a copy of its source record (same size, same sources, about the same tokens: the
augmentation's effect net of "more steps on more tokens"). Each arm is trained once per --seeds value (LoRA
initialisation and data order change; the split and the variants do not), then scored by macro-F1 from greedy
generation on a seeded --test subset of the test split, with percentile bootstrap CIs and paired differences.
Trained runs and predictions are kept under --out, so a rerun only does what is missing. Prints one JSON object.

Usage: python bench/augment_experiment.py [--train 100] [--test 300] [--validation 64] [--epochs 3]
       [--seeds 42 43] [--variants ACCEPTED.jsonl] [--out /tmp/augment-experiment] [key=value ...]
       (--variants reuses the accepted.jsonl of an earlier run; extra config overrides, e.g.
       data.augment.candidates=2)"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import time
from pathlib import Path

import numpy as np
import torch

from deftune import config as config_mod
from deftune import data
from deftune.core import bootstrap, runs
from deftune.core.files import write_json, write_jsonl
from deftune.core.inference import DecodingSettings, generate, parse_label
from deftune.data import Record
from deftune.data.augment import augment_split, write
from deftune.data.records import to_row
from deftune.evaluate import metrics
from deftune.train import recipe


def _jsonl(path: Path, records) -> str:
    write_jsonl(path, map(to_row, records))
    return str(path)


def _predict(run_dir: Path, test, labels: list[str]) -> list[str | None]:
    """Greedy answers of a trained run on the test records, parsed to labels (cached in run_dir)."""
    cache = run_dir / "experiment-predictions.json"
    if cache.exists():
        return json.loads(cache.read_text())
    model, tokenizer, run_cfg = runs.load_trained(str(run_dir))
    renderer = data.renderer_for(tokenizer, run_cfg.data.model_copy(update={"labels": labels}))
    answers = generate(
        model, tokenizer, [renderer.prompt_text(r) for r in test], DecodingSettings(max_new_tokens=8, batch_size=16)
    )
    predicted = [parse_label(a, labels) for a in answers]
    write_json(cache, predicted)
    return predicted


def _duplicated(train: list[Record], augmented: list[Record]) -> list[Record]:
    """The control arm: the original records plus, for each variant, a copy of its source record."""
    by_id = {r.id: r for r in train}
    variants = augmented[len(train) :]
    return train + [
        dataclasses.replace(by_id[v.meta["augmentation"]["source_id"]], id=f"{v.id}~copy") for v in variants
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=100)
    parser.add_argument("--test", type=int, default=300)
    parser.add_argument("--validation", type=int, default=64)
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[42])
    parser.add_argument("--variants", help="accepted.jsonl of an earlier augmentation of the same split")
    parser.add_argument("--out", default="/tmp/augment-experiment")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    out = Path(args.out)

    cfg = config_mod.load(
        None,
        [f"data.max_train_examples={args.train}", f"data.max_validation_examples={args.validation}", *args.overrides],
    )
    splits = data.load_splits(cfg.data, cfg.run.seed)
    test = random.Random(cfg.run.seed).sample(splits["test"].records, min(args.test, len(splits["test"])))
    labels = sorted({r.label for part in splits.values() for r in part.records})

    started = time.monotonic()
    if args.variants:
        train = splits["train"].records
        augmented = train + data.load(args.variants).records
        summary = json.loads((Path(args.variants).parent / "summary.json").read_text())
    else:
        parts, result = augment_split(splits, cfg)
        augmented, summary = parts["train"].records, result.summary
        write(result, out / "augment")
    augment_s = time.monotonic() - started

    files = {
        "validation": _jsonl(out / "validation.jsonl", splits["validation"].records),
        "test": _jsonl(out / "test.jsonl", splits["test"].records),
    }
    train = splits["train"].records
    arms = {"original": train, "duplicated": _duplicated(train, augmented), "augmented": augmented}
    gold = [r.label for r in test]
    stats = {"resamples": cfg.evaluation.resamples, "confidence": cfg.evaluation.confidence, "seed": cfg.run.seed}
    report: dict = {}
    for seed in args.seeds:
        scores, report[f"seed {seed}"] = {}, {}
        for arm, records in arms.items():
            run_dir = out / "runs" / f"{arm}-seed{seed}"
            result_file = run_dir / "train" / "result.json"
            if not result_file.exists():
                overrides = [
                    f"data.path={_jsonl(out / f'train-{arm}.jsonl', records)}",
                    f"data.validation_path={files['validation']}",
                    f"data.test_path={files['test']}",
                    "data.max_train_examples=null",
                    f"training.epochs={args.epochs}",
                    f"run.root={out / 'runs'}",
                    f"run.name={run_dir.name}",
                    f"run.seed={seed}",
                    *args.overrides,
                ]
                recipe.train(config_mod.load(None, overrides), overwrite=True, quiet=True)
            trained = json.loads(result_file.read_text())
            scores[arm] = next(
                m for m in metrics.classification(gold, _predict(run_dir, test, labels), labels) if m.name == "macro_f1"
            )
            report[f"seed {seed}"][arm] = {
                "train_examples": len(records),
                "steps": trained["steps"],
                "train_seconds": trained["seconds"],
                "macro_f1": bootstrap.interval(scores[arm], **stats),
            }
        for other in ("original", "duplicated"):
            report[f"seed {seed}"][f"augmented_minus_{other}"] = bootstrap.paired(
                scores[other], scores["augmented"], **stats
            )
    means = {
        arm: round(float(np.mean([report[f"seed {s}"][arm]["macro_f1"]["value"] for s in args.seeds])), 4)
        for arm in arms
    }
    print(
        json.dumps(
            {
                "model": cfg.model.spec,
                "method": cfg.method.name,
                "data": cfg.data.path,
                "split_seed": cfg.run.seed,
                "device": "cuda" if torch.cuda.is_available() else f"cpu ({torch.get_num_threads()} threads)",
                "test_examples": len(test),
                "validation_examples": len(splits["validation"]),
                "epochs": args.epochs,
                "augmentation": {
                    "seconds": round(augment_s, 1),
                    "reused": args.variants,
                    "accepted": summary["accepted"],
                    "candidates": summary["candidates"],
                    "acceptance_rate": {m: s["acceptance_rate"] for m, s in summary["methods"].items()},
                },
                "mean_macro_f1_over_seeds": means,
                "seeds": report,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
