import torch
from torch import nn
from transformers import AutoModelForCausalLM

from deftune import methods
from deftune.config import DropoutConfig, MethodConfig
from deftune.train.regularize import (
    set_attention_dropout,
    set_head_dropout,
    targeted_dropout,
)
from deftune.train.terms.l2sp import L2SP


def test_l2sp_gradient_is_alpha_times_distance_to_pretrained(tiny_model):
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    reg = L2SP(model.named_parameters(), alpha=0.3)
    assert reg.params and all(p.ndim >= 2 for p in reg.params.values())  # norms and biases are left out
    assert not any("norm" in name for name in reg.params)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    model.zero_grad()
    reg.penalty().backward()
    for name, p in reg.params.items():
        torch.testing.assert_close(p.grad, 0.3 * (p.detach() - reg.anchors[name]))
    norm = next(p for n, p in model.named_parameters() if "norm" in n)
    assert norm.grad is None


def test_l2sp_is_zero_at_the_pretrained_point(tiny_model):
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    assert L2SP(model.named_parameters(), alpha=1.0).penalty().item() == 0.0


def _dropouts(model):
    return {
        name: module for name, module in model.named_modules() if name.endswith(".default") and ".lora_dropout." in name
    }


def test_lora_dropout_lands_on_attention_only(tiny_model):
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    assert set_attention_dropout(model, 0.15) == 2  # one attention module per layer
    assert all(m.attention_dropout == 0.15 for m in model.modules() if hasattr(m, "attention_dropout"))
    tuned = methods.apply(model, MethodConfig(name="lora"), DropoutConfig(attention_modules=0.2, mlp_modules=0.0))
    dropouts = _dropouts(tuned)
    attention = {n: m for n, m in dropouts.items() if "self_attn" in n}
    mlp = {n: m for n, m in dropouts.items() if ".mlp." in n}
    assert len(attention) == 2 * 4 and len(mlp) == 2 * 3  # q,k,v,o and gate,up,down in each of 2 layers
    assert all(isinstance(m, nn.Dropout) and m.p == 0.2 for m in attention.values())
    assert all(isinstance(m, nn.Identity) for m in mlp.values())
    assert not [m for n, m in tuned.named_modules() if isinstance(m, nn.Dropout) and "embed" in n]


def test_dropout_rates_follow_the_config(tiny_model):
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    tuned = methods.apply(model, MethodConfig(name="lora"), DropoutConfig(attention_modules=0.0, mlp_modules=0.3))
    for name, module in _dropouts(tuned).items():
        if "self_attn" in name:
            assert isinstance(module, nn.Identity)
        else:
            assert isinstance(module, nn.Dropout) and module.p == 0.3


def test_attention_dropout_makes_training_forward_stochastic(tiny_model):
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    ids = torch.tensor([[1, 50, 60, 70, 80, 90]])
    model.train()
    same = torch.equal(model(ids).logits, model(ids).logits)
    set_attention_dropout(model, 0.5)
    assert same and not torch.equal(model(ids).logits, model(ids).logits)
    model.eval()
    assert torch.equal(model(ids).logits, model(ids).logits)


def test_head_dropout_zeroes_whole_heads_in_training_only(tiny_model):
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    assert set_head_dropout(model, 0.5) == 2  # one attention module per layer
    seen = []
    model.model.layers[0].self_attn.o_proj.register_forward_hook(lambda m, args, out: seen.append(args[0]))
    ids = torch.tensor([[1, 50, 60, 70, 80, 90]] * 8)
    model.train()
    model(ids)
    heads = seen[-1].view(8, 6, 4, 16).transpose(1, 2)  # batch, 4 heads, positions, 16 per head
    dropped = heads.abs().sum(dim=(2, 3)) == 0  # a head is zero at every position of an example, or nowhere
    assert dropped.any() and not dropped.all()
    model.eval()
    model(ids)
    plain = seen[-1].view(8, 6, 4, 16).transpose(1, 2)
    assert torch.allclose(heads[~dropped], 2 * plain[~dropped], atol=1e-5)  # kept heads scaled by 1/(1-0.5)


def test_head_dropout_keeps_the_fused_attention_kernel(tiny_model):
    model = AutoModelForCausalLM.from_pretrained(tiny_model, attn_implementation="sdpa")
    targeted_dropout(model, DropoutConfig(attention_heads=0.3, attention_probs=0.0))
    model.train()
    kernels = set()
    with torch.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: t):
        loss = model(torch.tensor([[1, 50, 60, 70, 80, 90]]), labels=torch.tensor([[1, 50, 60, 70, 80, 90]])).loss

    seen = set()

    def walk(fn):
        if fn is None or fn in seen:
            return
        seen.add(fn)
        kernels.add(type(fn).__name__)
        for next_fn, _ in fn.next_functions:
            walk(next_fn)

    walk(loss.grad_fn)
    assert any("FlashAttention" in k for k in kernels)


def test_head_dropout_can_be_switched_off_again(tiny_model):
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    ids = torch.tensor([[1, 50, 60, 70, 80, 90]])
    set_head_dropout(model, 0.5)
    set_head_dropout(model, 0.0)
    model.train()
    assert torch.equal(model(ids).logits, model(ids).logits)
