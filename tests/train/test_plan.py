"""The memory/compute plan against exact counts and measurements on tiny models: parameter, gradient, optimizer and
anchor bytes exactly; activations against the tensors autograd actually saves; the step's peak against the live
tensor bytes of real steps; the engine hooks; the command and the measuring worker."""

import json
import math
import tempfile
import weakref
from pathlib import Path

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from typer.testing import CliRunner

from deftune import config, methods
from deftune.cli import app
from deftune.core import models
from deftune.errors import ModelError
from deftune.plan import compare as plan_compare
from deftune.plan.measure import _optimizer, synthetic_batch
from deftune.train import estimate as plan
from deftune.train import memory, recipe
from deftune.train.engine import trained_position_loss
from deftune.train.terms import l2sp as l2sp_term
from tests.helpers import classification_file

ROWS, SEQ, TRAINED = 4, 48, 2
METHODS = ["full", "lora", "dora", "adapter", "prefix", "ia3"]


@pytest.fixture(scope="module")
def small_vocab_model(tmp_path_factory):
    """A tiny random Llama whose layers, not its vocabulary, hold most of the memory (no tokenizer needed:
    the plan reads the config, the steps use synthetic token ids)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    path = tmp_path_factory.mktemp("plan") / "model"
    torch.manual_seed(0)
    LlamaForCausalLM(
        LlamaConfig(
            vocab_size=512,
            hidden_size=64,
            intermediate_size=160,
            num_hidden_layers=4,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=16,
            tie_word_embeddings=True,
            pad_token_id=0,
        )
    ).save_pretrained(path, safe_serialization=True)
    return path


def _cfg(model_dir, *overrides):
    return config.load(
        None, [f"model.spec={model_dir}", f"data.max_length={SEQ}", f"training.max_tokens={ROWS * SEQ}", *overrides]
    )


def _prepared(cfg):
    """The model as the recipe sets it up (attention dropout, method, checkpointing), with its L2-SP term."""
    setup = recipe.set_up_model(cfg, models.load_model(models.resolve(cfg.model.spec)))
    model = setup.model
    if cfg.training.gradient_checkpointing:
        model.activation_checkpointing_enable()
    return model.train(), l2sp_term.build(model, setup.base_params, cfg.training)


def _batch(model):
    return synthetic_batch(ROWS, SEQ, TRAINED, model.config.vocab_size, 0)


def _forward(model, cfg, batch):
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.model.precision == "bf16"):
        return trained_position_loss(model, batch, None)[0]


class LiveBytes(TorchDispatchMode):
    """Bytes of the tensor storages created under this mode and still alive: now and at the peak."""

    def __init__(self, existing):
        super().__init__()
        self.alive, self.now, self.peak = {id(s): s for s in existing}, 0, 0

    def _freed(self, key, size):
        self.alive.pop(key, None)
        self.now -= size

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            storage = t.untyped_storage() if isinstance(t, torch.Tensor) else None
            key = id(storage)
            if storage is not None and key not in self.alive and storage.nbytes():
                size = storage.nbytes()
                self.alive[key] = weakref.ref(storage, lambda _, k=key, n=size: self._freed(k, n))
                self.now += size
                self.peak = max(self.peak, self.now)
        return out


# ---- exact counts ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_parameter_counts_and_bytes_are_exact(small_vocab_model, method):
    cfg = _cfg(small_vocab_model, f"method.name={method}")
    model, penalty = _prepared(cfg)
    counted = methods.count_parameters(model)
    est = plan.estimate(cfg, device="cpu", timed=False)
    params = list(model.parameters())
    assert (est.parameters["total"], est.parameters["trainable"]) == (counted.total, counted.trainable)
    assert est.memory_bytes["weights"] == sum(p.numel() * p.element_size() for p in params)
    assert est.memory_bytes["gradients"] == sum(p.numel() * p.element_size() for p in params if p.requires_grad)
    assert est.memory_bytes["l2sp_anchors"] == (
        sum(a.numel() * a.element_size() for a in penalty.anchors.values()) if penalty else 0
    )
    assert (est.memory_bytes["l2sp_anchors"] > 0) == (method == "full")


@pytest.mark.parametrize("method", ["full", "lora"])
def test_gradient_and_optimizer_state_bytes_are_exact(small_vocab_model, method):
    cfg = _cfg(small_vocab_model, f"method.name={method}")
    model, penalty = _prepared(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        optimizer = _optimizer(cfg, model, [term for term in [penalty] if term], Path(tmp))
    _forward(model, cfg, _batch(model)).backward()
    grads = sum(p.grad.numel() * p.grad.element_size() for p in model.parameters() if p.grad is not None)
    optimizer.step()
    moments = sum(
        state[k].numel() * state[k].element_size()
        for state in optimizer.state.values()
        for k in ("exp_avg", "exp_avg_sq")
    )
    est = plan.estimate(cfg, device="cpu", timed=False)
    assert grads == est.memory_bytes["gradients"]
    assert moments == est.memory_bytes["optimizer_states"]


def test_counting_needs_no_weights(tmp_path, small_vocab_model):
    """The plan reads only the config: a folder without weights plans the same."""
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "config.json").write_text((small_vocab_model / "config.json").read_text())
    assert (
        plan.estimate(_cfg(bare), device="cpu", timed=False).parameters
        == plan.estimate(_cfg(small_vocab_model), device="cpu", timed=False).parameters
    )


def test_non_llama_layers_are_refused(tmp_path):
    from transformers import GPT2Config

    GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=100).save_pretrained(tmp_path)
    with pytest.raises(ModelError, match="Llama-style"):
        plan.estimate(_cfg(tmp_path), device="cpu", timed=False)


# ---- activations and the step's peak against measurements ------------------------------------------------------


def _saved_bytes(model, cfg) -> int:
    """Bytes of the distinct tensors autograd saves during a forward pass, parameters left out."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        _forward(model, cfg, _batch(model))
    return sum(saved.values())


@pytest.mark.parametrize(
    "method, precision, attention_dropout",
    [
        *((m, p, 0.1) for m in METHODS for p in ("fp32", "bf16") if (m, p) != ("dora", "bf16")),  # CPU, dropout:
        # the math kernel
        ("lora", "fp32", 0.0),
        ("full", "bf16", 0.0),
        ("prefix", "bf16", 0.0),  # without: the fused kernel
    ],
)
def test_activations_match_what_autograd_saves(small_vocab_model, method, precision, attention_dropout):
    cfg = _cfg(
        small_vocab_model,
        f"method.name={method}",
        f"model.precision={precision}",
        f"training.dropout.attention_probs={attention_dropout}",
        "training.regularization=plain",
    )
    model, penalty = _prepared(cfg)
    est = plan.estimate(cfg, trained_per_row=TRAINED, device="cpu", timed=False).memory_bytes
    estimated = est["activations"] + est["weight_copies_16bit"]
    assert estimated == pytest.approx(_saved_bytes(model, cfg), rel=0.08)


@pytest.mark.parametrize(
    "overrides",
    [
        ("method.name=full",),
        ("method.name=full", "training.regularization=plain", "model.precision=bf16"),
        ("method.name=lora", "training.gradient_checkpointing=true"),
        ("method.name=adapter", "model.precision=bf16"),
    ],
)
def test_step_peak_matches_live_tensor_bytes(small_vocab_model, overrides):
    """Two real steps (forward, L2-SP, backward, clipping, the engine's optimizer): the peak of live tensor bytes
    beyond weights and anchors, against the estimate's."""
    cfg = _cfg(small_vocab_model, *overrides)
    model, penalty = _prepared(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        optimizer = _optimizer(cfg, model, [term for term in [penalty] if term], Path(tmp))
    batch = _batch(model)
    existing = [p.untyped_storage() for p in model.parameters()] + [
        a.untyped_storage() for a in (penalty.anchors.values() if penalty else [])
    ]
    with LiveBytes(existing) as live:
        for _ in range(2):
            loss = _forward(model, cfg, batch) + (penalty.penalty() if penalty else 0)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
            optimizer.step()
            model.zero_grad()
    est = plan.estimate(cfg, trained_per_row=TRAINED, device="cpu", timed=False)
    estimated = est.peak_bytes - est.memory_bytes["weights"] - est.memory_bytes["l2sp_anchors"]
    assert estimated == pytest.approx(live.peak, rel=0.12)


def test_checkpointing_keeps_far_fewer_activations(small_vocab_model):
    off, on = (
        plan.estimate(_cfg(small_vocab_model, f"training.gradient_checkpointing={c}"), device="cpu", timed=False)
        for c in (False, True)
    )
    assert on.memory_bytes["activations"] < off.memory_bytes["activations"] / 3
    assert on.flops_per_step > off.flops_per_step  # the layers' forward runs twice


# ---- shapes, the batch, FLOPs -----------------------------------------------------------------------------------


def test_shape_follows_the_batching(small_vocab_model):
    budget = plan.shape_of(_cfg(small_vocab_model, "training.effective_batch_tokens=1000"), trained_per_row=3)
    assert (budget.rows, budget.seq_len, budget.kept, budget.accumulation) == (ROWS, SEQ, 3 * ROWS, 6)
    fixed = plan.shape_of(_cfg(small_vocab_model, "training.batching=fixed", "training.batch_size=3"))
    assert (fixed.rows, fixed.seq_len, fixed.kept) == (3, SEQ, SEQ - 1)
    packed = plan.shape_of(_cfg(small_vocab_model, "training.packing=true"))
    assert (packed.rows, packed.seq_len) == (1, ROWS * SEQ)


@pytest.mark.parametrize("rows, trained", [(4, 2), (1, 5), (6, 20)])
def test_synthetic_batch_trains_the_planned_positions(rows, trained):
    batch = synthetic_batch(rows, 32, trained, 100, pad_id=0)
    targets = batch["labels"][:, 1:]
    kept = int((targets != -100).any(dim=0).sum())
    assert kept == min(32 - 1 - (rows > 1), rows * trained)
    assert ((targets != -100).sum(dim=1) == trained).all()
    assert int((batch["attention_mask"] == 0).sum()) == (rows > 1)


def test_flops_count_forward_backward_and_weight_gradients(small_vocab_model):
    cfg = _cfg(small_vocab_model, "method.name=full")
    arch, counts = plan.arch_and_counts(cfg)
    shape = plan.shape_of(cfg, trained_per_row=TRAINED)
    layers = 2 * shape.tokens * counts.layer_linear * arch.layers
    attention = 4 * shape.tokens * shape.seq_len * arch.heads * arch.head_dim * arch.layers
    head = 2 * shape.rows * shape.kept * arch.hidden * arch.vocab
    assert plan.step_flops(arch, counts, shape, cfg) == 3 * (layers + head) + 2 * attention


# ---- the engine's hooks -----------------------------------------------------------------------------------------


def test_suggested_max_tokens_is_the_largest_that_fits(small_vocab_model):
    cfg = _cfg(small_vocab_model, "training.max_tokens=4800")
    at = {
        n: plan.estimate(
            cfg.model_copy(update={"training": cfg.training.model_copy(update={"max_tokens": n * SEQ})}), timed=False
        ).peak_bytes
        for n in (1, 40, 41)
    }  # fits' device
    budget = (at[40] + at[41]) // 2
    assert memory.suggest_max_tokens(cfg, budget) == 40 * SEQ
    assert memory.fits(
        cfg.model_copy(update={"training": cfg.training.model_copy(update={"max_tokens": 40 * SEQ})}), budget
    )
    assert not memory.fits(cfg, budget)
    assert memory.suggest_max_tokens(cfg, 10 * at[41]) == 4800  # the configured value when it fits
    assert memory.suggest_max_tokens(cfg, at[1] - 1) == 0
    weights = plan.estimate(cfg, timed=False).memory_bytes["weights"]
    assert memory.suggest_max_tokens(cfg, budget - weights, loaded=True) == 40 * SEQ  # weights in memory already
    assert memory.memory_budget() > 0


def test_training_lowers_a_token_budget_that_would_not_fit(tmp_path, small_vocab_model, monkeypatch):

    cfg = _cfg(small_vocab_model, "training.max_tokens=4800")
    estimate = plan.estimate(
        cfg.model_copy(
            update={"training": cfg.training.model_copy(update={"max_tokens": 10 * SEQ, "gradient_accumulation": 2})}
        ),
        trained_per_row=TRAINED,
        timed=False,
    )
    budget = estimate.peak_bytes - estimate.memory_bytes["weights"]  # 10 examples' worth, weights loaded
    monkeypatch.setattr(memory, "memory_budget", lambda: budget)
    fitted, found = memory.fit(cfg, TRAINED)
    assert fitted.training.max_tokens == 10 * SEQ and found["max_tokens_lowered_from"] == 4800
    assert fitted.training.gradient_accumulation == math.ceil(4800 / (10 * SEQ))  # the same effective batch
    assert found["still_needed_bytes"] > found["available_bytes"] == budget
    same, found = memory.fit(fitted, TRAINED)
    assert same is fitted and found["max_tokens_lowered_from"] is None

    monkeypatch.setattr(memory, "memory_budget", lambda: 1)  # not one example fits: a warning, the config as is
    unchanged, found = memory.fit(cfg, TRAINED)
    assert unchanged is cfg and found["still_needed_bytes"] > 1


# ---- the command and the measuring worker -----------------------------------------------------------------------


def test_trained_tokens_come_from_the_data(tmp_path, tiny_model):
    data = classification_file(tmp_path / "topics.jsonl")
    cfg = config.load(None, [f"model.spec={tiny_model}", f"data.path={data}"])
    trained = plan_compare.trained_per_row(cfg)
    assert trained is not None and 1 < trained < 10  # a label and the end-of-turn token, not the prompt


def test_compare_covers_every_method_precision_and_checkpointing(small_vocab_model):
    cfg = _cfg(small_vocab_model)
    rows = plan_compare.run(plan_compare.variants(cfg, "cpu"), trained_per_row=TRAINED, device="cpu")
    assert {(r.estimate.method, r.estimate.precision, r.estimate.checkpointing) for r in rows} == {
        (m, p, c) for m in METHODS for p in ("fp32", "bf16") for c in (False, True) if not (m == "prefix" and c)
    }
    saved = plan_compare.savings(rows, measured=False)
    full = next(
        i
        for i, r in enumerate(rows)
        if r.estimate.method == "full" and r.estimate.precision == "fp32" and not r.estimate.checkpointing
    )
    assert saved[full] == 0
    claims = plan_compare.seed_claims(rows)
    assert {c["verdict"] for c in claims} <= {"holds", "does not hold"}
    lora = next(c for c in claims if c["claim"].startswith("lora: parameters modified"))
    assert lora["value_pct"] == pytest.approx(
        100 * next(r.estimate.parameters["trainable_share"] for r in rows if r.estimate.method == "lora")
    )


@pytest.mark.processes
def test_worker_measures_a_configuration(small_vocab_model):
    """Measured in fresh processes: on CPU with freed memory returned, and again with glibc's allocator as is."""
    device = plan.default_device()
    measured = plan_compare.measure(
        _cfg(small_vocab_model, "method.name=lora"), trained_per_row=TRAINED, steps=2, device=device
    )
    assert "error" not in measured, measured.get("error")
    runs = [measured, measured["glibc_default"]] if device == "cpu" else [measured]
    assert [run["freed_memory_returned"] for run in runs] == ([True, False] if device == "cpu" else [False])
    for run in runs:
        assert run["peak_bytes"] >= run["loaded_bytes"] > 0
        assert len(run["step_seconds"]) == 2 and math.isfinite(run["last_loss"])
    assert measured["seconds_per_step"] == runs[-1]["seconds_per_step"]


@pytest.mark.processes
def test_plan_command_writes_plan_json(tmp_path, tiny_model):
    data = classification_file(tmp_path / "topics.jsonl")
    result = CliRunner().invoke(
        app, ["plan", f"model.spec={tiny_model}", f"data.path={data}", f"run.root={tmp_path}", "run.name=p", "--quiet"]
    )
    assert result.exit_code == 0, result.output
    written = json.loads((tmp_path / "p" / "plan" / "plan.json").read_text())
    (row,) = written["configurations"]
    assert row["estimate"]["memory_bytes"]["peak"] > row["estimate"]["memory_bytes"]["weights"] > 0
    assert written["trained_positions"] == "from the training data"
    printed = result.output.replace("\n", "")  # rich wraps long paths at the terminal's width
    assert "peak (MiB)" in printed and "plan.json" in printed


def test_measuring_skips_a_precision_the_hardware_emulates(small_vocab_model, monkeypatch):
    from deftune.core import precision

    monkeypatch.setattr(precision, "hardware", lambda: precision.Hardware("cpu", False, False, "AVX2"))
    cfg = _cfg(small_vocab_model, "model.precision=bf16")
    (row,) = plan_compare.run([cfg], trained_per_row=TRAINED, device="cpu", measure_steps=2)
    assert "not native" in row.measured["skipped"] and row.measured_peak is None
    assert row.estimate.precision == "bf16"  # still estimated
