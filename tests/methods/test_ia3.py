"""IA3 (added as one method module) end to end: trained by the recipe, exported as an adapter and merged,
evaluated against its base model."""

import json

import torch
from transformers import AutoModelForCausalLM

from deftune import config
from deftune.core import runs
from deftune.evaluate import evaluate
from deftune.train.export import export
from deftune.train.recipe import train
from tests.evaluate.test_evaluate import FAST
from tests.helpers import classification_file


def test_ia3_trains_exports_merges_and_evaluates(tmp_path, tiny_model):
    data = classification_file(tmp_path / "topics.jsonl", copies=3)
    cfg = config.load(
        None,
        [
            f"model.spec={tiny_model}",
            f"data.path={data}",
            f"run.root={tmp_path / 'runs'}",
            "run.name=ia3",
            "method.name=ia3",
            "data.split.test=0.25",
            "data.split.validation=0",
            "training.max_steps=3",
            "training.learning_rate=5e-2",
            "evaluation.stress=false",
            *FAST,
        ],
    )
    result = train(cfg, quiet=True)
    saved = json.loads((tmp_path / "runs" / "ia3" / "train" / "adapter" / "adapter_config.json").read_text())
    assert saved["peft_type"] == "IA3" and 0 < result.parameters["trainable_share"] < 0.01

    adapter, merged = export(result.run_dir), export(result.run_dir, merge=True)
    assert (adapter / "adapter_model.safetensors").is_file()
    ids = torch.tensor([[1, 100, 200, 300]])
    tuned, _, _ = runs.load_trained(result.run_dir)
    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    with torch.no_grad():
        expected = tuned.eval()(ids).logits
        assert not torch.allclose(base(ids).logits, expected)  # training moved the scaling vectors
        torch.testing.assert_close(
            AutoModelForCausalLM.from_pretrained(merged)(ids).logits, expected, rtol=1e-4, atol=1e-4
        )

    evaluated = evaluate(result.run_dir)
    report = json.loads((tmp_path / "runs" / "ia3" / "evaluate" / "eval.json").read_text())
    assert evaluated.systems == ["base", "tuned"] and report["metrics"]["tuned"]["generated"]["accuracy"]["n"] > 0
