"""Golden values that pin deftune's behaviour across refactors: the first training losses of every method (padded
and packed batches, with L2-SP and with the adversary), the memory plan's figures, one evaluation's metrics and
the report's sections, all on the tiny model in fp32. They were recorded from the code before the restructure
(`DEFTUNE_GOLDEN_WRITE=1 pytest tests/test_golden.py` writes them anew) and must hold unchanged after it."""

import json
import os
import re
from pathlib import Path

import pytest

from deftune import config
from deftune.evaluate import evaluate
from deftune.report import build
from deftune.train import estimate as plan
from deftune.train.recipe import train
from tests.helpers import TOPICS, write_jsonl

GOLDEN = Path(__file__).parent / "golden.json"
WRITE = os.environ.get("DEFTUNE_GOLDEN_WRITE") == "1"
COMMON = [
    "model.precision=fp32",
    "training.learning_rate=1e-2",
    "training.max_tokens=128",
    "training.warmup=0.2",
    "training.logging_steps=1",
    "data.split.test=0",
    "data.split.validation=0.25",
    "training.eval_steps=3",
    "training.early_stopping.task_examples=4",
]
ARMS = {
    "full": ["method.name=full"],
    "lora": ["method.name=lora"],
    "dora": ["method.name=dora"],
    "prefix": ["method.name=prefix"],
    "adapter": ["method.name=adapter"],
    "full_packed": ["method.name=full", "training.packing=true"],
    "lora_packed": ["method.name=lora", "training.packing=true"],
    "adapter_packed": ["method.name=adapter", "training.packing=true"],
    "lora_plain_decay": ["method.name=lora", "training.weight_decay=0.1"],
    "full_plain": ["method.name=full", "training.regularization=plain", "training.weight_decay=0.1"],
    "lora_adversary": [
        "method.name=lora",
        "training.adversary.weight=0.5",
        "training.adversary.examples=12",
        "training.adversary.warmup_epochs=2",
    ],
    "lora_reweighted": ["method.name=lora", "data.balance.strategy=reweight"],
}


def _golden() -> dict:
    return json.loads(GOLDEN.read_text()) if GOLDEN.is_file() else {}


def _check(key: str, found, rel: float = 1e-4):
    """Compare with the recorded value (or record it when writing)."""
    if WRITE:
        stored = _golden()
        stored[key] = found
        GOLDEN.write_text(json.dumps(stored, indent=1, sort_keys=True) + "\n")
        return
    expected = _golden().get(key)
    assert expected is not None, f"no golden value for {key}; record it with DEFTUNE_GOLDEN_WRITE=1"
    flat, want = _flat(json.loads(json.dumps(found))), _flat(expected)
    assert flat.keys() == want.keys(), key
    for name, value in want.items():
        assert flat[name] == (
            value if value is None or isinstance(value, str) else pytest.approx(value, rel=rel, abs=1e-7)
        ), f"{key}: {name}"


def _flat(value, prefix: str = "") -> dict:
    if isinstance(value, dict):
        return {k: v for name, item in value.items() for k, v in _flat(item, f"{prefix}{name}/").items()}
    if isinstance(value, list):
        return {k: v for i, item in enumerate(value) for k, v in _flat(item, f"{prefix}{i}/").items()}
    return {prefix.rstrip("/"): value}


@pytest.fixture(scope="module")
def grouped_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("golden")
    rows = [
        {
            "id": f"{label}-{i}-{c}",
            "text": text,
            "label": label,
            "group": {"gender": "female" if (i + c) % 3 else "male"},
        }
        for label, texts in TOPICS.items()
        for i, text in enumerate(texts)
        for c in range(3)
    ]
    return write_jsonl(root / "topics.jsonl", rows)


def _cfg(tmp_path, tiny_model, data, name, *overrides):
    return config.load(
        None,
        [
            f"model.spec={tiny_model}",
            f"data.path={data}",
            f"run.root={tmp_path}",
            f"run.name={name}",
            *COMMON,
            *overrides,
        ],
    )


@pytest.mark.parametrize("arm", ARMS)
def test_first_losses_of_each_method(tmp_path, tiny_model, grouped_data, arm):
    result = train(_cfg(tmp_path, tiny_model, grouped_data, arm, "training.max_steps=6", *ARMS[arm]), quiet=True)
    rows = [json.loads(line) for line in (Path(result.run_dir) / "train" / "metrics.jsonl").read_text().splitlines()]
    losses = [row["loss"] for row in rows if "loss" in row and "eval_loss" not in row]
    assert len(losses) == 6
    _check(
        f"losses/{arm}",
        {"losses": losses, "validation_loss": result.validation_loss, "trainable": result.parameters["trainable"]},
    )


@pytest.mark.parametrize("method", ["full", "lora", "dora", "prefix", "adapter"])
@pytest.mark.parametrize("extra", [[], ["training.gradient_checkpointing=true"], ["model.precision=bf16"]])
def test_memory_plan_figures(tiny_model, method, extra):
    if method == "prefix" and extra == ["training.gradient_checkpointing=true"]:
        pytest.skip("prefix does not train with checkpointing")
    cfg = config.load(
        None,
        [
            f"model.spec={tiny_model}",
            f"method.name={method}",
            "training.max_tokens=512",
            "data.max_length=128",
            "model.precision=fp32",
            *extra,
        ],
    )
    est = plan.estimate(cfg, trained_per_row=3, device="cpu", timed=False)
    _check(
        f"plan/{method}/{'+'.join(extra) or 'default'}",
        {
            "memory": est.memory_bytes,
            "flops": est.flops_per_step,
            "tokens": est.tokens_per_step,
            "parameters": est.parameters,
        },
        rel=1e-9,
    )


def test_evaluation_metrics_and_report_sections(tmp_path, tiny_model, grouped_data):
    cfg = _cfg(
        tmp_path,
        tiny_model,
        grouped_data,
        "eval",
        "training.max_steps=4",
        "data.split.test=0.25",
        "evaluation.resamples=200",
        "evaluation.max_new_tokens=4",
        "evaluation.stress_examples=4",
        "evaluation.foreign_examples=3",
        "evaluation.ambiguous_examples=3",
        "evaluation.retention_questions=3",
        "evaluation.perplexity_documents=2",
        "evaluation.perplexity_max_tokens=16",
        "evaluation.retention_benchmarks=[piqa,siqa]",
        "evaluation.perturbations=[casing,typo]",
    )
    result = train(cfg, quiet=True)
    evaluate(result.run_dir)
    report = json.loads((Path(result.run_dir) / "evaluate" / "eval.json").read_text())
    values = {
        f"{system}/{group}/{metric}": found["value"]
        for system, groups in report["metrics"].items()
        for group, metrics in groups.items()
        for metric, found in metrics.items()
    }
    values.update(
        {
            f"retention/{name}/{side}": found[side]["value"]
            for name, found in report["retention"]["metrics"].items()
            for side in ("base", "tuned")
        }
    )
    values.update(
        {
            f"stress/{system}/{name}/flip_rate": found["flip_rate"]["value"]
            for system, suite in report["stress"]["invariance"].items()
            for name, found in suite["perturbations"].items()
        }
    )
    _check("evaluation", values)
    html = build(result.run_dir).read_text()
    sections = re.findall(r"<section id=(\w+)><h2>", html)
    headings = re.findall(r"<h3>([^<]+)</h3>", html)
    if WRITE:
        _check("report", {"sections": sections, "headings": headings})
    else:
        assert sections == _golden()["report"]["sections"]
        assert set(_golden()["report"]["headings"]) <= set(headings)  # headings may be added, never lost
