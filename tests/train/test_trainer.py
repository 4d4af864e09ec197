import json

import pytest
import torch

from deftune import config
from deftune.core import runs
from deftune.data.render import IGNORE, Rendered
from deftune.errors import RunError
from deftune.train.engine import Collator
from deftune.train.recipe import train
from tests.helpers import classification_file


def _config(tmp_path, tiny_model, *overrides):
    data = classification_file(tmp_path / "topics.jsonl", copies=3)
    return config.load(
        None,
        [
            f"model.spec={tiny_model}",
            f"data.path={data}",
            f"run.root={tmp_path / 'runs'}",
            "run.name=r",
            "data.split.test=0",
            "data.split.validation=0.25",
            *overrides,
        ],
    )


def test_collator_pads_and_masks():
    batch = Collator(pad_token_id=0)([Rendered("a", [5, 6, 7], [IGNORE, 6, 7]), Rendered("b", [8], [8])])
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["labels"].tolist() == [[IGNORE, 6, 7], [8, IGNORE, IGNORE]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]


def test_lora_run_lands_peft_adapter_and_loss_decreases(tmp_path, tiny_model):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    cfg = _config(
        tmp_path,
        tiny_model,
        "training.max_steps=30",
        "training.learning_rate=3e-2",
        "training.batch_size=4",
        "training.warmup=0",
    )
    result = train(cfg, quiet=True)
    run_dir = tmp_path / "runs" / "r"
    assert result.run_dir == str(run_dir) and result.steps == 30
    assert result.examples == {"train": 18, "validation": 6, "test": 0}
    assert 0 < result.parameters["trainable_share"] < 1

    rows = [json.loads(line) for line in (run_dir / "train" / "metrics.jsonl").read_text().splitlines()]
    losses = [row["loss"] for row in rows if "loss" in row]
    assert len(losses) == 30 and all("learning_rate" in row for row in rows if "loss" in row)
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5
    assert any("eval_loss" in row for row in rows) and result.validation_loss is not None

    adapter = run_dir / "train" / "adapter"
    assert (adapter / "adapter_config.json").is_file() and (adapter / "adapter_model.safetensors").is_file()
    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    ids = torch.tensor([[1, 200, 300, 400]])
    with torch.no_grad():
        before = base(ids).logits
        tuned = PeftModel.from_pretrained(base, adapter)(ids).logits
    assert not torch.allclose(before, tuned)

    assert config.load(run_dir / "config.yaml") == cfg
    assert json.loads((run_dir / "versions.json").read_text())["transformers"] == runs.versions()["transformers"]
    split = json.loads((run_dir / "data" / "split.json").read_text())
    assert len(split["train"]) == 18 and not set(split["train"]) & set(split["validation"])


def test_full_fine_tune_saves_a_loadable_model(tmp_path, tiny_model):
    from transformers import AutoModelForCausalLM

    result = train(_config(tmp_path, tiny_model, "method.name=full", "training.max_steps=2"), quiet=True)
    assert result.parameters["trainable_share"] == 1
    model = AutoModelForCausalLM.from_pretrained(result.output_dir)
    assert list((tmp_path / "runs" / "r" / "train" / "model").glob("*.safetensors"))
    assert model.config.num_hidden_layers == 2


def test_a_run_never_overwrites_earlier_results(tmp_path, tiny_model):
    cfg = _config(tmp_path, tiny_model, "training.max_steps=1")
    train(cfg, quiet=True)
    adapter = tmp_path / "runs" / "r" / "train" / "adapter" / "adapter_model.safetensors"
    written = adapter.read_bytes()
    with pytest.raises(RunError, match="already holds results"):
        train(cfg, quiet=True)
    assert adapter.read_bytes() == written
    train(cfg, quiet=True, overwrite=True)
