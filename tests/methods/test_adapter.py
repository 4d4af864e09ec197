import json
import shutil
import warnings

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM

from deftune.errors import ConfigError, ModelError
from deftune.methods._bottleneck import (
    AdapterWrapper,
    BottleneckAdapter,
    BottleneckConfig,
    adapter_state_dict,
    add_adapters,
    is_adapter_dir,
    load_adapters,
    remove_adapters,
    save_adapters,
)

IDS = torch.tensor([[1, 200, 300, 400, 500, 600], [1, 700, 800, 900, 1000, 1100]])
HIDDEN, LAYERS = 64, 2  # the tiny model


def _base(tiny_model):
    return AutoModelForCausalLM.from_pretrained(tiny_model)


def _logits(model):
    with torch.no_grad():
        return model(IDS).logits


def _wrappers(model, placement):
    return [w for w in model.modules() if isinstance(w, AdapterWrapper) and w.adapter_key.endswith(placement)]


def _train(model, steps=5):
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(steps):
        model(IDS, labels=IDS).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return model.eval()


def _generate(model, **kwargs):
    prompt = IDS[:1]
    return model.generate(
        prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=8, do_sample=False, pad_token_id=0, **kwargs
    )


@pytest.mark.parametrize("nonlinearity", ["relu", "gelu", "silu"])
def test_fresh_adapters_are_the_identity_and_sit_on_attention_and_mlp(tiny_model, nonlinearity):
    model = _base(tiny_model)
    before = _logits(model)
    assert add_adapters(model, BottleneckConfig(nonlinearity=nonlinearity)) is model
    assert torch.equal(_logits(model), before)
    for layer in model.model.layers:
        for block in (layer.self_attn, layer.mlp):
            assert isinstance(block, AdapterWrapper) and not block.training
            assert not block.adapter.up.weight.any() and not block.adapter.up.bias.any()
            assert block.adapter.up.weight.dtype == torch.float32
    assert type(model.model.layers[0].self_attn.base_layer).__name__ == "LlamaAttention"
    assert "model.layers.0.self_attn.base_layer.q_proj.weight" in model.state_dict()
    assert model.model.layers[1].self_attn.layer_idx == 1  # attributes of the wrapped block stay readable


def test_adapters_receive_the_attention_and_mlp_outputs(tiny_model):
    model = add_adapters(_base(tiny_model), BottleneckConfig())
    seen = {}
    layer = model.model.layers[0]
    for name in ("self_attn", "mlp"):
        wrapper = getattr(layer, name)
        wrapper.base_layer.register_forward_hook(lambda m, a, out, name=name: seen.__setitem__((name, "out"), out))
        wrapper.adapter.register_forward_pre_hook(lambda m, a, name=name: seen.__setitem__((name, "in"), a[0]))
    _logits(model)
    attention_out, mlp_out = seen["self_attn", "out"], seen["mlp", "out"]
    assert isinstance(attention_out, tuple) and seen["self_attn", "in"] is attention_out[0]
    assert isinstance(mlp_out, torch.Tensor) and seen["mlp", "in"] is mlp_out


@pytest.mark.parametrize(
    ("reduction", "placement", "expected"), [(16, ("attention", "mlp"), 2320), (8, ("mlp",), 2192)]
)
def test_only_adapters_train_and_count_matches_formula(tiny_model, reduction, placement, expected):
    model = add_adapters(_base(tiny_model), BottleneckConfig(reduction_factor=reduction, placement=placement))
    b = HIDDEN // reduction
    per_adapter = 2 * HIDDEN * b + b + HIDDEN  # down: h·b weights + b biases; up: b·h weights + h biases
    assert LAYERS * len(placement) * per_adapter == expected
    trainable = {name: p.numel() for name, p in model.named_parameters() if p.requires_grad}
    assert sum(trainable.values()) == expected
    assert all(".adapter." in name for name in trainable)
    assert len(adapter_state_dict(model)) == 4 * LAYERS * len(placement)


def test_train_save_load_gives_identical_logits_and_generations(tiny_model, tmp_path):
    base = _base(tiny_model)
    base_logits = _logits(base)
    model = _train(add_adapters(base, BottleneckConfig(reduction_factor=4)))
    tuned = _logits(model)
    assert not torch.equal(tuned, base_logits)

    folder = save_adapters(model, tmp_path / "adapter")
    assert is_adapter_dir(folder) and sorted(p.name for p in folder.iterdir()) == [
        "adapter_config.json",
        "adapter_model.safetensors",
    ]
    saved = json.loads((folder / "adapter_config.json").read_text())
    assert saved["method"] == "bottleneck_adapter" and saved["format_version"] == 1
    assert saved["base_model_name_or_path"] == str(tiny_model) and saved["reduction_factor"] == 4
    assert sorted(load_file(folder / "adapter_model.safetensors")) == sorted(adapter_state_dict(model))
    assert "layers.1.attention.up.weight" in adapter_state_dict(model)

    loaded = load_adapters(_base(tiny_model), folder)
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    assert torch.equal(_logits(loaded), tuned)
    generated = _generate(loaded)
    assert torch.equal(generated, _generate(model))
    assert torch.equal(generated, _generate(loaded, use_cache=False))  # the KV-cache path agrees with the full one

    again = load_adapters(_base(tiny_model), folder, trainable=True)
    assert sum(p.numel() for p in again.parameters() if p.requires_grad) == sum(
        p.numel() for p in model.parameters() if p.requires_grad
    )


def test_dropout_only_where_configured(tiny_model):
    model = add_adapters(_base(tiny_model), BottleneckConfig(attention_dropout=0.3))
    attention, mlp = _wrappers(model, "attention"), _wrappers(model, "mlp")
    assert len(attention) == len(mlp) == LAYERS
    assert all(isinstance(w.adapter.dropout, torch.nn.Dropout) and w.adapter.dropout.p == 0.3 for w in attention)
    assert all(isinstance(w.adapter.dropout, torch.nn.Identity) for w in mlp)
    assert torch.equal(_logits(model), _logits(model))  # eval mode, as the base model was
    model.train()
    x = torch.randn(2, 5, HIDDEN)
    for wrapper in attention + mlp:
        torch.nn.init.normal_(wrapper.adapter.up.weight)
        with torch.no_grad():
            same = torch.equal(wrapper.adapter(x), wrapper.adapter(x))
        assert same == (wrapper in mlp)


def test_load_rejects_mismatched_folders(tiny_model, tmp_path):
    good = save_adapters(add_adapters(_base(tiny_model), BottleneckConfig()), tmp_path / "good")
    base = _base(tiny_model)
    before = _logits(base)

    def broken(name, config=None, drop_key=None):
        folder = tmp_path / name
        shutil.copytree(good, folder)
        if config is not None:
            data = json.loads((good / "adapter_config.json").read_text())
            (folder / "adapter_config.json").write_text(json.dumps({**data, **config}))
        if drop_key is not None:
            state = load_file(good / "adapter_model.safetensors")
            del state[drop_key]
            save_file(state, folder / "adapter_model.safetensors")
        return folder

    cases = {
        broken("reduction", {"reduction_factor": 8}): "shape",
        broken("placement", {"placement": ["attention"]}): "unexpected layers.0.mlp.down.bias",
        broken("missing", drop_key="layers.1.mlp.up.weight"): "missing layers.1.mlp.up.weight",
        broken("peft", {"method": "lora"}): "not a bottleneck adapter config",
        broken("version", {"format_version": 99}): "format_version",
        broken("nonlinearity", {"nonlinearity": "tanh"}): "nonlinearity",
        broken("unknown", {"rank": 8}): "unknown adapter config fields: rank",
        tmp_path / "absent": "no adapter_config.json",
    }
    for folder, message in cases.items():
        with pytest.raises(ModelError, match=message) as info:
            load_adapters(base, folder)
        assert str(folder) in str(info.value)
        assert not any(isinstance(m, AdapterWrapper) for m in base.modules())
    assert not is_adapter_dir(tmp_path / "peft") and not is_adapter_dir(tmp_path / "absent")
    assert torch.equal(_logits(base), before)


def test_remove_adapters_restores_base(tiny_model):
    model = _base(tiny_model)
    before, keys = _logits(model), list(model.state_dict())
    _train(add_adapters(model, BottleneckConfig()), steps=2)
    assert not torch.equal(_logits(model), before)
    assert remove_adapters(model) is model
    assert list(model.state_dict()) == keys and not any(isinstance(m, AdapterWrapper) for m in model.modules())
    assert torch.equal(_logits(model), before)


@pytest.mark.parametrize("reentrant", [False, True])
def test_backward_with_gradient_checkpointing(tiny_model, reentrant):
    model = add_adapters(_base(tiny_model), BottleneckConfig())
    for wrapper in _wrappers(model, ""):
        torch.nn.init.normal_(wrapper.adapter.up.weight, std=0.1)  # so that down-projections get gradients too
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # gradient_checkpointing_enable is a deprecated alias
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": reentrant})
    model.train()
    assert model.is_activation_checkpointing
    model(IDS, labels=IDS).loss.backward()
    for name, param in model.named_parameters():
        if ".adapter." in name:
            assert param.grad is not None and param.grad.any(), name
        else:
            assert param.grad is None, name


def test_hf_trainer_trains_only_the_adapters(tiny_model, tmp_path):
    from transformers import Trainer, TrainingArguments

    base_state = {k: v.clone() for k, v in _base(tiny_model).state_dict().items()}
    model = add_adapters(_base(tiny_model), BottleneckConfig())
    args = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=3,
        per_device_train_batch_size=2,
        learning_rate=1e-2,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        activation_checkpointing=True,
        disable_tqdm=True,
        logging_strategy="no",
    )
    rows = [{"input_ids": ids, "labels": ids} for ids in IDS]
    Trainer(model=model, args=args, train_dataset=rows).train()
    assert all(w.adapter.up.weight.any() for w in _wrappers(model, ""))
    trained = remove_adapters(model).state_dict()
    assert all(torch.equal(trained[k], v) for k, v in base_state.items())


def test_config_json_and_validation():
    config = BottleneckConfig(reduction_factor=8, nonlinearity="silu", attention_dropout=0.1, placement=["attention"])
    assert config.placement == ("attention",)
    text = config.to_json("some/base")
    assert json.loads(text)["base_model_name_or_path"] == "some/base"
    assert BottleneckConfig.from_json(text) == config
    for bad in (
        {"reduction_factor": 0},
        {"reduction_factor": 2.0},
        {"nonlinearity": "tanh"},
        {"attention_dropout": 1.0},
        {"mlp_dropout": -0.1},
        {"placement": ()},
        {"placement": ("ffn",)},
        {"placement": ("mlp", "mlp")},
    ):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            BottleneckConfig(**bad)


def test_add_adapters_rejects_unsupported_models(tiny_model):
    with pytest.raises(ModelError, match="Linear: no decoder layers"):
        add_adapters(torch.nn.Linear(2, 2), BottleneckConfig())
    model = add_adapters(_base(tiny_model), BottleneckConfig())
    with pytest.raises(ModelError, match="already has bottleneck adapters"):
        add_adapters(model, BottleneckConfig())
    with pytest.raises(ConfigError, match="exceeds the hidden size 64"):
        add_adapters(_base(tiny_model), BottleneckConfig(reduction_factor=128))
    assert isinstance(model.model.layers[0].mlp.adapter, BottleneckAdapter)
