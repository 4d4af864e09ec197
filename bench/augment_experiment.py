"""Does augmentation help on a small training set? The demo fine-tune (embedded SmolLM2-135M-Instruct, BBC News,
LoRA) on --train examples of the demo split, without and with the accepted variants (back-translation +
paraphrases, `deftune.data.augment.augment_split`, so variants never come from or near validation/test records),
then macro-F1 by greedy generation on a seeded --test subset of the test split, with percentile bootstrap CIs and
the paired difference. Prints one JSON object.

Usage: python bench/augment_experiment.py [--train 100] [--test 300] [--validation 64] [--epochs 3]
       [--out /tmp/augment-experiment] [key=value ...]   (extra config overrides, e.g. data.augment.candidates=2)"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import torch

from deftune import config as config_mod
from deftune import data, runs
from deftune.data.augment import augment_split, write
from deftune.data.augment.pipeline import row
from deftune.evaluate import bootstrap, metrics
from deftune.evaluate.generate import DecodingSettings, generate, parse_label
from deftune.train import trainer


def _jsonl(path: Path, records) -> str:
    runs.write_atomic(path, "".join(json.dumps(row(r), ensure_ascii=False) + "\n" for r in records))
    return str(path)


def _macro_f1(run_dir: str, test, labels: list[str]) -> tuple[bootstrap.Metric, float]:
    model, tokenizer, run_cfg = runs.load_trained(run_dir)
    renderer = data.renderer_for(tokenizer, run_cfg.data.model_copy(update={"labels": labels}))
    started = time.monotonic()
    answers = generate(model, tokenizer, [renderer.prompt_text(r) for r in test],
                       DecodingSettings(max_new_tokens=8, batch_size=16))
    predicted = [parse_label(a, labels) for a in answers]
    macro = next(m for m in metrics.classification([r.label for r in test], predicted, labels)
                 if m.name == "macro_f1")
    return macro, time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=100)
    parser.add_argument("--test", type=int, default=300)
    parser.add_argument("--validation", type=int, default=64)
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--out", default="/tmp/augment-experiment")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    out = Path(args.out)

    cfg = config_mod.load(None, [f"data.max_train_examples={args.train}",
                                 f"data.max_validation_examples={args.validation}", *args.overrides])
    splits = data.load_splits(cfg.data, cfg.run.seed)
    test = random.Random(cfg.run.seed).sample(splits["test"].records, min(args.test, len(splits["test"])))
    labels = sorted({r.label for part in splits.values() for r in part.records})

    started = time.monotonic()
    augmented, result = augment_split(splits, cfg)
    augment_s = time.monotonic() - started
    write(result, out / "augment")

    files = {"validation": _jsonl(out / "validation.jsonl", splits["validation"].records),
             "test": _jsonl(out / "test.jsonl", splits["test"].records)}
    arms = {"original": splits["train"].records, "augmented": augmented["train"].records}
    scores, report = {}, {}
    for arm, records in arms.items():
        overrides = [f"data.path={_jsonl(out / f'train-{arm}.jsonl', records)}",
                     f"data.validation_path={files['validation']}", f"data.test_path={files['test']}",
                     "data.max_train_examples=null", f"training.epochs={args.epochs}",
                     f"run.root={out / 'runs'}", f"run.name={arm}", *args.overrides]
        run_cfg = config_mod.load(None, overrides)
        trained = trainer.train(run_cfg, overwrite=True, quiet=True)
        scores[arm], eval_s = _macro_f1(trained.run_dir, test, labels)
        report[arm] = {"train_examples": len(records), "steps": trained.steps, "train_seconds": trained.seconds,
                       "eval_seconds": round(eval_s, 1)}
    stats = {"resamples": cfg.evaluation.resamples, "confidence": cfg.evaluation.confidence, "seed": cfg.run.seed}
    for arm in arms:
        report[arm]["macro_f1"] = bootstrap.interval(scores[arm], **stats)
    print(json.dumps({
        "model": cfg.model.spec, "method": cfg.method.name, "data": cfg.data.path, "seed": cfg.run.seed,
        "device": "cuda" if torch.cuda.is_available() else f"cpu ({torch.get_num_threads()} threads)",
        "test_examples": len(test), "validation_examples": len(splits["validation"]), "epochs": args.epochs,
        "augmentation": {"seconds": round(augment_s, 1), "accepted": result.summary["accepted"],
                         "candidates": result.summary["candidates"],
                         "acceptance_rate": {m: s["acceptance_rate"] for m, s in result.summary["methods"].items()}},
        "arms": report,
        "augmented_minus_original": bootstrap.paired(scores["original"], scores["augmented"], **stats),
    }, indent=2))


if __name__ == "__main__":
    main()
