import pytest
import torch
from transformers import AutoModelForCausalLM

from deftune import methods
from deftune.config import DropoutConfig, MethodConfig
from deftune.core import models
from deftune.errors import ModelError

IDS = torch.tensor([[1, 100, 200, 300, 400, 500]])


def _perturb(model):
    """Stand-in for training: move every trainable parameter."""
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.05)


def _logits(model):
    model.eval()
    with torch.no_grad():
        return model(IDS).logits


RUNNABLE = [m.name for m in methods.REGISTRY.values() if not m.quantized_base]  # 4-bit bases need CUDA
MERGEABLE = [
    m.name for m in methods.REGISTRY.values() if m.saved_as == "adapter" and not m.unmergeable and not m.quantized_base
]


def test_the_config_and_the_sweep_follow_the_registry():
    from deftune.config import Config, SweepConfig

    assert set(MethodConfig.model_fields["name"].annotation.__args__) == set(methods.names())
    assert {"lora", "adapter", "prefix", "ia3"} <= set(MethodConfig.model_fields) - {"name"}
    assert {"lora_r", "lora_alpha", "reduction_factor"} <= set(SweepConfig.model_fields)
    assert Config(method={"name": "ia3", "ia3": {"target_modules": ["v_proj"]}}).method.ia3.target_modules == ["v_proj"]


@pytest.mark.parametrize("name", RUNNABLE)
def test_method_save_load_round_trip(tmp_path, tiny_model, name):
    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    tuned = methods.apply(base, MethodConfig(name=name), DropoutConfig())
    counts = methods.count_parameters(tuned)
    assert 0 < counts.trainable <= counts.total
    assert (counts.share == 1.0) == (name == "full")
    _perturb(tuned)
    expected = _logits(tuned)
    saved = methods.save(tuned, MethodConfig(name=name), tmp_path)
    fresh = AutoModelForCausalLM.from_pretrained(tiny_model)
    loaded = AutoModelForCausalLM.from_pretrained(saved) if name == "full" else methods.load_onto(fresh, saved)
    assert list(saved.glob("*.safetensors"))
    torch.testing.assert_close(_logits(loaded), expected, rtol=0, atol=1e-6)
    assert not torch.allclose(expected, _logits(AutoModelForCausalLM.from_pretrained(tiny_model)))


@pytest.mark.parametrize("name", MERGEABLE)
def test_merge_keeps_outputs(tmp_path, tiny_model, name):
    tuned = methods.apply(AutoModelForCausalLM.from_pretrained(tiny_model), MethodConfig(name=name), DropoutConfig())
    _perturb(tuned)
    expected = _logits(tuned)
    merged = tuned.merge_and_unload()
    merged.save_pretrained(tmp_path / "merged")
    torch.testing.assert_close(
        _logits(AutoModelForCausalLM.from_pretrained(tmp_path / "merged")), expected, rtol=1e-4, atol=1e-4
    )


def test_trainable_shares_are_ordered(tiny_model):
    shares = {
        name: methods.count_parameters(
            methods.apply(AutoModelForCausalLM.from_pretrained(tiny_model), MethodConfig(name=name), DropoutConfig())
        ).share
        for name in ("full", "lora", "adapter", "prefix")
    }
    assert shares["full"] == 1 > shares["lora"] > 0 and 0 < shares["adapter"] < 1 and 0 < shares["prefix"] < 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only error")
def test_qlora_without_cuda_is_a_clear_error(tiny_model):
    with pytest.raises(ModelError, match="qlora needs a CUDA GPU and the bitsandbytes package"):
        models.load(str(tiny_model), quantize_4bit=True)
