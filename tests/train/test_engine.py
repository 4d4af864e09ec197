"""The training engine end to end on the tiny model: early stopping, resume, the NaN guard, export, DDP."""

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from deftune import config
from deftune.errors import RunError
from deftune.train import engine, recipe
from deftune.train.export import export
from tests.helpers import classification_file


def _config(tmp_path, tiny_model, name, *overrides, validation=0.25):
    data = tmp_path / "topics.jsonl"
    if not data.exists():
        classification_file(data, copies=3)
    return config.load(
        None,
        [
            f"model.spec={tiny_model}",
            f"data.path={data}",
            f"run.root={tmp_path / 'runs'}",
            f"run.name={name}",
            "data.split.test=0",
            f"data.split.validation={validation}",
            "training.max_tokens=256",
            "training.learning_rate=1e-2",
            *overrides,
        ],
    )


def _adapter(path: Path) -> dict:
    return load_file(str(path / "adapter_model.safetensors"))


def test_early_stopping_stops_and_restores_the_best(tmp_path, tiny_model, monkeypatch):
    scores = iter([0.1, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0, -0.1, -0.2, -0.3])
    monkeypatch.setattr(
        engine.Composite, "terms", lambda self, model, loss, renderer, records: {"composite": next(scores)}
    )
    cfg = _config(
        tmp_path,
        tiny_model,
        "es",
        "training.max_steps=20",
        "training.eval_steps=2",
        "training.early_stopping.patience=2",
    )
    result = recipe.train(cfg, quiet=True)
    assert result.steps == 8  # evaluations at 2, 4 (best), 6, 8: two without improvement
    assert result.early_stopping["best_step"] == 4 and result.early_stopping["best_composite"] == 0.5
    best = _adapter(tmp_path / "runs" / "es" / "train" / "checkpoints" / "checkpoint-4")
    final = _adapter(Path(result.output_dir))
    assert final.keys() == best.keys() and all(torch.equal(final[k], best[k]) for k in best)
    rows = [json.loads(r) for r in (tmp_path / "runs" / "es" / "train" / "metrics.jsonl").read_text().splitlines()]
    assert [r["eval_composite"] for r in rows if "eval_composite" in r][:4] == [0.1, 0.5, 0.4, 0.3]
    assert rows[0]["composite_weights"] == {"loss": 1.0, "task": 1.0, "retention": 0.0}


def test_composite_score_uses_loss_and_task_metric(tmp_path, tiny_model):
    result = recipe.train(
        _config(tmp_path, tiny_model, "cs", "training.max_steps=2", "training.eval_steps=2"), quiet=True
    )
    final = result.early_stopping["final"]
    assert 0.0 <= final["eval_macro_f1"] <= 1.0
    assert final["eval_composite"] == pytest.approx(final["eval_macro_f1"] - final["eval_loss"])


def test_retention_weight_adds_the_measured_drop_to_the_composite(tmp_path, tiny_model):
    result = recipe.train(
        _config(
            tmp_path,
            tiny_model,
            "rt",
            "training.max_steps=2",
            "training.eval_steps=2",
            "training.early_stopping.retention_weight=2",
            "training.early_stopping.retention_questions=3",
            "evaluation.retention_benchmarks=[piqa]",
        ),
        quiet=True,
    )
    final = result.early_stopping["final"]
    assert result.early_stopping["weights"]["retention"] == 2.0
    assert min(abs(3 * final["eval_retention_drop"] - k) for k in range(-3, 4)) < 1e-9  # a change on 3 questions
    assert final["eval_composite"] == pytest.approx(
        final["eval_macro_f1"] - final["eval_loss"] - 2 * final["eval_retention_drop"]
    )


def test_step_metrics_are_logged(tmp_path, tiny_model):
    result = recipe.train(
        _config(
            tmp_path,
            tiny_model,
            "m",
            "training.max_steps=4",
            "training.warmup=0.25",
            "training.decay=0.25",
            validation=0,
        ),
        quiet=True,
    )
    rows = [json.loads(r) for r in (Path(result.run_dir) / "train" / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "loss" in r]
    assert len(steps) == 4
    for key in (
        "learning_rate",
        "phase",
        "tokens_per_s",
        "useful_tokens_per_s",
        "padding_share",
        "peak_memory_mb",
        "grad_norm",
    ):
        assert all(key in r for r in steps), key
    assert [r["phase"] for r in steps] == ["warmup", "stable", "stable", "decay"]
    assert all(0 <= r["padding_share"] < 0.5 for r in steps)


def _crash_after(monkeypatch, calls: int, error=KeyboardInterrupt):
    count = {"n": 0}
    real = engine.trained_position_loss

    def crashing(model, inputs, num_items):
        count["n"] += 1
        if count["n"] > calls:
            raise error
        return real(model, inputs, num_items)

    monkeypatch.setattr(engine, "trained_position_loss", crashing)


def test_resume_reaches_the_same_weights(tmp_path, tiny_model, monkeypatch):
    steps = ["training.max_steps=8", "training.eval_steps=4"]
    whole = recipe.train(_config(tmp_path, tiny_model, "whole", *steps, validation=0), quiet=True)
    _crash_after(monkeypatch, 5)  # killed during step 6, after checkpoint-4 was written
    with pytest.raises(KeyboardInterrupt):
        recipe.train(_config(tmp_path, tiny_model, "crash", *steps, validation=0), quiet=True)
    monkeypatch.undo()
    checkpoints = tmp_path / "runs" / "crash" / "train" / "checkpoints"
    (checkpoints / "checkpoint-6").mkdir()  # a half-written checkpoint must be ignored
    assert engine.latest_checkpoint(checkpoints).name == "checkpoint-4"
    resumed = recipe.train(_config(tmp_path, tiny_model, "crash", *steps, validation=0), resume=True, quiet=True)
    a, b = _adapter(Path(whole.output_dir)), _adapter(Path(resumed.output_dir))
    assert resumed.steps == 8 and all(torch.equal(a[k], b[k]) for k in a)


def test_resume_needs_a_checkpoint(tmp_path, tiny_model):
    with pytest.raises(RunError, match="no complete checkpoint"):
        recipe.train(_config(tmp_path, tiny_model, "none", "training.max_steps=1"), resume=True, quiet=True)


def test_nan_loss_stops_with_a_clear_message(tmp_path, tiny_model, monkeypatch):
    real = engine.trained_position_loss
    count = {"n": 0}

    def poisoned(model, inputs, num_items):
        count["n"] += 1
        loss, n = real(model, inputs, num_items)
        return (loss * float("nan") if count["n"] == 6 else loss), n

    monkeypatch.setattr(engine, "trained_position_loss", poisoned)
    with pytest.raises(engine.TrainingDiverged, match=r"loss became nan at step 6.*checkpoint-4"):
        recipe.train(
            _config(tmp_path, tiny_model, "nan", "training.max_steps=8", "training.eval_steps=4", validation=0),
            quiet=True,
        )


def test_export_adapter_and_merged_model(tmp_path, tiny_model):
    from peft import AutoPeftModelForCausalLM
    from transformers import AutoModelForCausalLM

    from deftune.core import runs

    result = recipe.train(_config(tmp_path, tiny_model, "ex", "training.max_steps=3", validation=0), quiet=True)
    adapter = export(result.run_dir)
    assert (adapter / "adapter_config.json").is_file()
    merged = export(result.run_dir, merge=True)
    ids = torch.tensor([[1, 100, 200, 300]])
    tuned, _, _ = runs.load_trained(result.run_dir)
    with torch.no_grad():
        expected = tuned.eval()(ids).logits
        torch.testing.assert_close(
            AutoModelForCausalLM.from_pretrained(merged)(ids).logits, expected, rtol=1e-4, atol=1e-4
        )
        torch.testing.assert_close(AutoPeftModelForCausalLM.from_pretrained(adapter)(ids).logits, expected)
    with pytest.raises(RunError, match="already exists"):
        export(result.run_dir, merge=True)


def test_prefix_runs_cannot_be_merged(tmp_path, tiny_model):
    result = recipe.train(
        _config(tmp_path, tiny_model, "px", "method.name=prefix", "training.max_steps=1", validation=0), quiet=True
    )
    with pytest.raises(RunError, match="cannot merge a prefix run"):
        export(result.run_dir, merge=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.processes
def test_two_process_ddp_on_cpu(tmp_path, tiny_model):
    out = tmp_path / "ddp"
    out.mkdir()
    data = classification_file(tmp_path / "topics.jsonl", copies=3)
    worker = Path(__file__).with_name("ddp_worker.py")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        f"--master_port={_free_port()}",
        str(worker),
        str(out),
        f"model.spec={tiny_model}",
        f"data.path={data}",
        f"run.root={tmp_path / 'runs'}",
        "run.name=ddp",
        "data.split.test=0",
        "data.split.validation=0",
        "training.max_tokens=256",
        "training.epochs=2",
        "model.precision=fp32",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=Path(__file__).parents[2])
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = [json.loads((out / f"seen-{r}.json").read_text()) for r in (0, 1)]
    assert seen[0] and seen[1] and seen[0] != seen[1]
    assert len(set(seen[0]) | set(seen[1])) == 24  # every training example, split across the ranks
    w0, w1 = (load_file(str(out / f"weights-{r}.safetensors")) for r in (0, 1))
    assert w0.keys() == w1.keys() and all(torch.equal(w0[k], w1[k]) for k in w0)


def test_out_of_memory_halves_micro_batches_and_keeps_going(tmp_path, tiny_model, monkeypatch):
    real = engine.trained_position_loss

    def small_memory(model, inputs, num_items):
        if inputs["input_ids"].numel() > 128:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(model, inputs, num_items)

    monkeypatch.setattr(engine, "trained_position_loss", small_memory)
    cfg = _config(
        tmp_path, tiny_model, "oom", "training.max_steps=2", "training.effective_batch_tokens=512", validation=0
    )
    result = recipe.train(cfg, quiet=True)
    assert result.batching["oom_backoffs"] == [128]
    assert result.batching["max_tokens"] == 128 and result.batching["accumulation"] >= 4
    assert result.steps == 2


def test_packing_gives_the_same_loss_as_padding(tiny_model, tokenizer):
    from transformers import AutoModelForCausalLM

    from deftune.data.records import Record
    from deftune.data.render import Renderer

    model = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    renderer = Renderer(tokenizer, labels=["sport", "tech"], instruction="{labels}: {text}")
    examples = [
        renderer.render(Record(id=str(i), format="classification", text=t, label=lab))
        for i, (t, lab) in enumerate(
            [("goal scored", "sport"), ("new chip released today", "tech"), ("the runner won", "sport")]
        )
    ]
    with torch.no_grad():
        padded, n1 = engine.trained_position_loss(model, engine.Collator(0)(examples), None)
        packed, n2 = engine.trained_position_loss(model, engine.Collator(0, packing=True)(examples), None)
    assert n1 == n2 and packed.item() == pytest.approx(padded.item(), rel=1e-5)
    assert engine.Collator(0, packing=True)(examples)["input_ids"].shape == (1, sum(map(len, examples)))


def test_packing_run(tmp_path, tiny_model):
    result = recipe.train(
        _config(tmp_path, tiny_model, "pk", "training.packing=true", "training.max_steps=2", validation=0), quiet=True
    )
    assert result.batching["packing"] and result.steps == 2


@pytest.mark.parametrize("method", ["lora", "adapter", "full"])
def test_gradient_checkpointing_runs(tmp_path, tiny_model, method):
    result = recipe.train(
        _config(
            tmp_path,
            tiny_model,
            f"gc-{method}",
            f"method.name={method}",
            "training.gradient_checkpointing=true",
            "training.max_steps=2",
            validation=0,
        ),
        quiet=True,
    )
    assert result.steps == 2 and result.last_loss is not None


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only error")
def test_fp16_needs_a_gpu(tmp_path, tiny_model):
    from deftune.errors import ConfigError

    with pytest.raises(ConfigError, match="fp16"):
        recipe.train(_config(tmp_path, tiny_model, "fp16", "model.precision=fp16"), quiet=True)


@pytest.mark.parametrize("cpu_bf16, expected", [(False, "fp32"), (True, "bf16")])
def test_default_training_precision_follows_the_cpu(tmp_path, tiny_model, monkeypatch, cpu_bf16, expected):
    """A default run trains fp32 on a CPU without native bf16 and bf16 on one with it, and records which."""
    from deftune.core import precision

    hw = precision.Hardware("cpu", cuda_bf16=False, cpu_bf16=cpu_bf16, cpu_capability="mocked")
    monkeypatch.setattr(precision, "hardware", lambda: hw)
    seen = {}
    original = engine.training_args

    def spy(*args, **kwargs):
        made = original(*args, **kwargs)
        seen.update(bf16=made.bf16, fp16=made.fp16)
        return made

    monkeypatch.setattr(recipe, "training_args", spy)
    result = recipe.train(
        _config(tmp_path, tiny_model, f"precision-{expected}", "training.max_steps=1", validation=0), quiet=True
    )
    assert seen == {"bf16": expected == "bf16", "fp16": False}
    recorded = json.loads((Path(result.run_dir) / "train" / "result.json").read_text())["precision"]
    assert (recorded["name"], recorded["requested"]) == (expected, "auto") and "(mocked" in recorded["reason"]
    start = json.loads((Path(result.run_dir) / "train" / "metrics.jsonl").read_text().splitlines()[0])
    assert start["event"] == "start" and start["precision"]["name"] == expected
