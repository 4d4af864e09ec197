"""Memory and compute plan before training: what one configuration will need, estimated from the model's shapes
without loading any weights.

- Parameters are counted exactly on a `meta`-device copy of the model with the method applied.
- What lives through a step: weights, L2-SP anchors, gradients, optimizer states (AdamW keeps two per trainable
  parameter; 8-bit AdamW, where bitsandbytes and CUDA are there, about two bytes).
- What a step creates: the tensors autograd saves for the backward pass, per decoder layer from its shapes (only
  the layer inputs with gradient checkpointing, plus one layer recomputed at a time), the 16-bit weight copies
  autocast makes, the loss at trained positions only (the engine projects onto the vocabulary nowhere else), and
  the L2-SP penalty's saved differences. The peak is the largest of the moments of a step: end of forward,
  start, middle and end of backward, optimizer step.
- FLOPs count the matrix multiplications; the time divides them by the machine's measured matmul throughput.

The activation model follows Llama-style decoder layers (RMSNorm, rotary attention with grouped key/value heads,
gated MLP) as transformers runs them with PyTorch's scaled-dot-product attention: on CPU with attention dropout
that is the math kernel, which keeps three attention matrices per layer; otherwise a fused kernel, which keeps
none. Dropout on CPU keeps a mask as large as its input (on CUDA one byte per element).
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field

import torch
from transformers import AutoConfig, AutoModelForCausalLM

from .. import methods
from ..config import Config, DropoutConfig, MethodConfig, ModelConfig
from ..core import models
from ..core.models import DTYPES
from ..core.precision import choose as choose_precision
from ..core.precision import matmul_flops_per_s
from ..errors import ModelError
from .batching import accumulation

# The projections of a Llama-style decoder layer and the side of the layer each belongs to.
PROJECTIONS = {
    "q_proj": "attention",
    "k_proj": "attention",
    "v_proj": "attention",
    "o_proj": "attention",
    "gate_proj": "mlp",
    "up_proj": "mlp",
    "down_proj": "mlp",
}
ADAMW_STATES = 2  # exp_avg and exp_avg_sq, each the size and dtype of its parameter
ADAMW_8BIT_BYTES = 2 + 8 / 256  # two uint8 states plus an fp32 absmax per 256-element block of each
NF4_BYTES = 0.5 + 1 / 64 + 4 / (64 * 256)  # QLoRA base weights: 4 bits, 8-bit absmax per 64, fp32 per 256 absmax


@dataclass(frozen=True)
class Arch:
    """The decoder's shapes, from its Hugging Face config."""

    model_type: str
    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int

    @classmethod
    def of(cls, config) -> Arch:
        c = config.get_text_config()
        fields = ("num_hidden_layers", "hidden_size", "intermediate_size", "num_attention_heads", "vocab_size")
        missing = [f for f in fields if not isinstance(getattr(c, f, None), int)]
        if missing:
            raise ModelError(
                f"deftune plan models Llama-style decoders; the {c.model_type} config has no {', '.join(missing)}",
                field="model.spec",
            )
        heads = c.num_attention_heads
        return cls(
            c.model_type,
            c.num_hidden_layers,
            c.hidden_size,
            c.intermediate_size,
            heads,
            getattr(c, "num_key_value_heads", None) or heads,
            getattr(c, "head_dim", None) or c.hidden_size // heads,
            c.vocab_size,
        )


@dataclass(frozen=True)
class Counts:
    """Exact parameter figures of the model with the method applied (counted on the meta device)."""

    total: int
    trainable: int
    weight_bytes: int
    trainable_bytes: int  # also the gradients' size: a gradient has its parameter's dtype
    anchored_bytes: int  # L2-SP anchors: copies of the fully trained weight matrices
    largest_anchored_bytes: int
    layer_linear: int  # weights multiplied in one decoder layer (base projections, LoRA, adapters)
    layer_trainable_linear: int
    head: int  # output projection weights (vocabulary × hidden)
    base_trainable: bool  # the base model's own weights train (full fine-tuning)
    tied: bool  # the output projection shares the input embedding's weights
    head_trainable: bool
    lora_ranks: dict[str, int] = field(default_factory=dict)  # projection name → rank
    out_features: dict[str, int] = field(default_factory=dict)  # projection name → output width
    dora: bool = False
    scaled: dict[str, str] = field(default_factory=dict)  # projection → "input" or "output": IA3's learned scaling
    bottleneck: int = 0  # adapter width
    prefix: int = 0  # virtual tokens

    @property
    def share(self) -> float:
        return self.trainable / self.total if self.total else 0.0


@dataclass(frozen=True)
class Shape:
    """One micro-batch as the plan sees it: `rows` examples of `seq_len` tokens, the vocabulary projected at
    `kept` positions (the union over rows of positions with a trained next token), `accumulation` micro-batches
    per optimizer step."""

    rows: int
    seq_len: int
    kept: int
    accumulation: int = 1

    @property
    def tokens(self) -> int:
        return self.rows * self.seq_len


def shape_of(cfg: Config, trained_per_row: int | None = None) -> Shape:
    """The largest micro-batch the config allows. Token-budget batches hold max_tokens // max_length examples of
    max_length tokens (the worst case for attention; an example longer than the budget forms a batch alone),
    packing one row of max_tokens (as many examples), fixed batching batch_size rows. Without `trained_per_row`
    (the most trained tokens of one example) every position is assumed trained."""
    t, length = cfg.training, cfg.data.max_length
    examples = t.batch_size if t.batching == "fixed" else max(1, t.max_tokens // length)
    rows, seq_len = (1, max(t.max_tokens, length)) if t.packing else (examples, length)
    kept = seq_len - 1 if trained_per_row is None else min(seq_len - 1, examples * trained_per_row)
    return Shape(rows, seq_len, kept, accumulation(t, rows * seq_len, examples))


def _hf_config(cfg: Config):
    resolved = models.resolve(cfg.model.spec)
    try:
        return AutoConfig.from_pretrained(
            resolved.location, revision=cfg.model.revision, trust_remote_code=cfg.model.trust_remote_code
        )
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read the config of '{cfg.model.spec}': {exc}", field="model.spec") from None


@functools.lru_cache(maxsize=32)
def _arch_and_counts(model_json: str, method_json: str, l2sp: bool) -> tuple[Arch, Counts]:
    model_cfg, method = ModelConfig.model_validate_json(model_json), MethodConfig.model_validate_json(method_json)
    hf_config = _hf_config(Config(model=model_cfg))
    arch = Arch.of(hf_config)
    facts = methods.get(method.name)
    counted = method.model_copy(update={"name": facts.plan_as}) if facts.plan_as else method
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(
            hf_config, dtype=DTYPES[model_cfg.dtype], trust_remote_code=model_cfg.trust_remote_code
        )
        base = {id(p) for p in model.parameters()}
        model = methods.apply(model, counted, DropoutConfig())
    linear = [
        (name.split("."), m)
        for name, m in model.get_decoder().layers[0].named_modules()
        if isinstance(m, torch.nn.Linear)
    ]
    projection = [next((p for p in parts if p in PROJECTIONS), None) for parts, _ in linear]
    missing = set(PROJECTIONS) - set(projection)
    if missing:
        raise ModelError(
            f"deftune plan models Llama-style decoder layers (q/k/v/o and gate/up/down projections); "
            f"{arch.model_type} has no {', '.join(sorted(missing))}",
            field="model.spec",
        )
    ranks = {p: m.out_features for p, (parts, m) in zip(projection, linear) if "lora_A" in parts}
    out = {
        p: m.out_features for p, (parts, m) in zip(projection, linear) if p and not {"lora_A", "lora_B"} & set(parts)
    }
    bottleneck = next((m.out_features for parts, m in linear if parts[-2:] == ["adapter", "down"]), 0)
    scaled = {
        p: "input" if m.is_feedforward else "output"
        for name, m in model.get_decoder().layers[0].named_modules()
        if hasattr(m, "ia3_l")
        for p in name.split(".")
        if p in PROJECTIONS
    }
    params = list(model.parameters())
    counts = methods.count_parameters(model)
    head = model.get_output_embeddings().weight
    anchored = [p for p in params if id(p) in base and p.requires_grad and p.ndim >= 2]
    weight_bytes = sum(p.numel() * p.element_size() for p in params)
    if facts.quantized_base:  # base projection weights stored in 4 bits instead of the model's dtype
        base_linear = arch.layers * sum(
            m.weight.numel() for parts, m in linear if not {"lora_A", "lora_B"} & set(parts)
        )
        weight_bytes -= int(base_linear * (DTYPES[model_cfg.dtype].itemsize - NF4_BYTES))
    return arch, Counts(
        total=counts.total,
        trainable=counts.trainable,
        weight_bytes=weight_bytes,
        trainable_bytes=sum(p.numel() * p.element_size() for p in params if p.requires_grad),
        anchored_bytes=sum(p.numel() * p.element_size() for p in anchored) if l2sp else 0,
        largest_anchored_bytes=max((p.numel() * p.element_size() for p in anchored), default=0) if l2sp else 0,
        layer_linear=sum(m.weight.numel() for _, m in linear),
        layer_trainable_linear=sum(m.weight.numel() for _, m in linear if m.weight.requires_grad),
        head=head.numel(),
        base_trainable=facts.trains_base,
        tied=head is model.get_input_embeddings().weight,
        head_trainable=head.requires_grad,
        lora_ranks=ranks,
        out_features=out,
        dora=method.name == "dora",
        scaled=scaled,
        bottleneck=bottleneck,
        prefix=method.prefix.num_virtual_tokens if method.name == "prefix" else 0,
    )


def arch_and_counts(cfg: Config) -> tuple[Arch, Counts]:
    """The architecture and exact parameter counts for `cfg` (cached per model, method and use of L2-SP)."""
    return _arch_and_counts(
        cfg.model.model_dump_json(),
        cfg.method.model_dump_json(),
        cfg.training.regularization == "l2sp" and cfg.training.l2sp > 0,
    )


def _autocast(cfg: Config) -> bool:
    """Mixed precision: fp32 master weights with 16-bit matmuls (autocast)."""
    return precision_of(cfg) != "fp32" and cfg.model.dtype == "float32"


def _matmul_bytes(cfg: Config) -> int:
    """Bytes per element of what matrix multiplications produce."""
    return 2 if _autocast(cfg) or cfg.model.dtype != "float32" else 4


def _math_attention(cfg: Config, device: str) -> bool:
    """Whether attention runs PyTorch's math kernel (CPU with attention dropout), which keeps attention matrices."""
    return device == "cpu" and cfg.training.dropout.attention_probs > 0


def layer_activations(arch: Arch, counts: Counts, shape: Shape, cfg: Config, device: str) -> dict[str, int]:
    """Bytes autograd keeps for the backward pass of one decoder layer whose input needs a gradient, by part
    (the 16-bit weight copies of mixed precision are counted apart, in `weight_copies`)."""
    drop = cfg.training.dropout
    autocast, mm = _autocast(cfg), _matmul_bytes(cfg)
    b, s, T = shape.rows, shape.seq_len, shape.tokens
    L = s + counts.prefix
    h, i, a, d = arch.hidden, arch.intermediate, arch.heads, arch.head_dim

    def mask(in_bytes: int) -> int:  # a dropout mask's bytes per element: the input's dtype on CPU, bool on CUDA
        return in_bytes if device == "cpu" else 1

    def inputs(names: tuple[str, ...], features: int, in_bytes: int) -> int:
        """What projections reading one shared input keep: the input itself where a weight gradient needs it
        (one 16-bit copy per projection under autocast), LoRA's dropout masks and dropped inputs, LoRA B's input,
        DoRA's weight-norm terms, and what IA3's scaling vectors need for their gradient (the input scaled, or the
        output)."""
        total, shared = 0, False
        cast = 2 if autocast and in_bytes == 4 else 0
        for name in names:
            rank = counts.lora_ranks.get(name, 0)
            p = (drop.attention_modules if PROJECTIONS[name] == "attention" else drop.mlp_modules) if rank else 0
            if p:
                total += T * features * (mask(in_bytes) + (cast or in_bytes))
            elif (counts.base_trainable or rank) and cast:
                total += cast * T * features
            elif (counts.base_trainable or rank) and not shared:
                total, shared = total + in_bytes * T * features, True
            if rank:
                total += mm * T * rank
            if rank and counts.dora:
                total += mm * features * (features + rank) + 2 * mm * T * counts.out_features[name]
            if counts.scaled.get(name) == "input":
                total += in_bytes * T * features
            elif counts.scaled.get(name) == "output":
                total += mm * T * counts.out_features[name]
        return total

    if _math_attention(cfg, device):  # q, repeated k and v, then softmax output, dropout mask and dropped probs
        attention, attention_out = 4 * (b * a * s * d + 2 * b * a * L * d + 3 * b * a * s * L), 4
    else:  # fused kernel: q, k, v (repeated when a padding mask is built), output, log-sum-exp
        kv = a if b > 1 or counts.prefix else arch.kv_heads
        attention, attention_out = mm * (2 * b * a * s * d + 2 * b * kv * L * d) + 4 * b * a * s, mm
    adapters = 0
    if counts.bottleneck:  # per adapter: down's input, the activation, and with dropout its mask and output
        ab, m = (2 if autocast else 4), counts.bottleneck
        for p in (drop.attention_modules, drop.mlp_modules):
            adapters += ab * T * h + ab * T * m + (T * m * (mask(ab) + ab) if p else 0)
    return {
        "norms": 2 * (4 * T * h + 4 * T) + (2 * 4 * T * h if counts.base_trainable else 0),
        "attention_projections": inputs(("q_proj", "k_proj", "v_proj"), h, 4),
        "attention": attention,
        "attention_output": inputs(("o_proj",), a * d, attention_out),
        "mlp": inputs(("gate_proj", "up_proj"), h, 4) + 3 * mm * T * i + inputs(("down_proj",), i, mm),
        "adapters": adapters,
    }


def first_layer_savings(arch: Arch, counts: Counts, shape: Shape, cfg: Config, device: str) -> tuple[int, int]:
    """What the first decoder layer does not keep when its input needs no gradient (frozen embeddings, no
    checkpointing), as (activations, 16-bit weight copies): its input norm's tensors and the q/k/v base weights'
    copies, and where the attention has no trainable part its tensors and o_proj's copy too."""
    if counts.base_trainable or cfg.training.gradient_checkpointing:
        return 0, 0
    T, h = shape.tokens, arch.hidden
    frozen_attention = not counts.prefix and not {"q_proj", "k_proj", "v_proj"} & (
        counts.lora_ranks.keys() | counts.scaled.keys()
    )
    copied = ("q_proj", "k_proj", "v_proj", *(("o_proj",) if frozen_attention else ()))
    in_features = {"o_proj": arch.heads * arch.head_dim}
    copies = sum(2 * counts.out_features[p] * in_features.get(p, h) for p in copied) if _autocast(cfg) else 0
    attention = layer_activations(arch, counts, shape, cfg, device)["attention"] if frozen_attention else 0
    return 4 * T * h + 4 * T + attention, copies


@dataclass
class Estimate:
    """The plan of one configuration; every figure in bytes, FLOPs or seconds as its name says."""

    method: str
    precision: str  # fp32 | bf16 | fp16 (autocast over the model's dtype) or the model's 16-bit dtype
    checkpointing: bool
    device: str
    parameters: dict[str, float]
    shape: dict[str, int]
    memory_bytes: dict[str, int]
    activations_per_layer_bytes: dict[str, int]
    phases_bytes: dict[str, int]
    optimizer_8bit_states_bytes: int | None
    flops_per_step: float
    tokens_per_step: int
    seconds_per_step: float | None

    @property
    def peak_bytes(self) -> int:
        return self.memory_bytes["peak"]

    def to_json(self) -> dict:
        return asdict(self)


def precision_of(cfg: Config) -> str:
    """What the configured run computes in on this machine: the model's 16-bit dtype, else model.precision as
    `core.precision.choose` resolves it here."""
    if cfg.model.dtype != "float32":
        return {"bfloat16": "bf16", "float16": "fp16"}[cfg.model.dtype]
    return choose_precision(cfg.model.precision, warn=False).name


def step_flops(arch: Arch, counts: Counts, shape: Shape, cfg: Config) -> float:
    """Matmul FLOPs of one optimizer step: forward 2·weights·tokens plus attention and the vocabulary projection
    at kept positions; backward the same again for input gradients plus 2·trainable weights·tokens; checkpointing
    repeats the layers' forward."""
    T, b, L = shape.tokens, shape.rows, shape.seq_len + counts.prefix
    attention = 4 * T * L * arch.heads * arch.head_dim * arch.layers
    layers = 2 * T * counts.layer_linear * arch.layers
    head = 2 * b * shape.kept * arch.hidden * arch.vocab
    forward = layers + attention + head
    weight_grads = 2 * T * counts.layer_trainable_linear * arch.layers + (head if counts.head_trainable else 0)
    recompute = layers + attention if cfg.training.gradient_checkpointing else 0
    return float(shape.accumulation * (2 * forward + weight_grads + recompute))


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def estimate(
    cfg: Config,
    *,
    trained_per_row: int | None = None,
    device: str | None = None,
    baseline_bytes: int = 0,
    timed: bool = True,
) -> Estimate:
    """Estimate memory, FLOPs and time of one training step of `cfg`. `baseline_bytes` is the process's own
    memory before any model (part of the resident set on CPU); `timed=False` skips the matmul measurement."""
    device = device or default_device()
    arch, counts = arch_and_counts(cfg)
    shape = shape_of(cfg, trained_per_row)
    checkpointing = cfg.training.gradient_checkpointing
    autocast, mm = _autocast(cfg), _matmul_bytes(cfg)
    b, K, T, h, V = shape.rows, shape.kept, shape.tokens, arch.hidden, arch.vocab
    parts = layer_activations(arch, counts, shape, cfg, device)
    per_layer = sum(parts.values())
    layer_copies = 2 * counts.layer_linear if autocast else 0
    head_copy = 2 * counts.head if autocast else 0
    boundary = (4 if cfg.model.dtype == "float32" else 2) * T * h  # a layer's input, all checkpointing keeps
    if checkpointing:
        layers_saved = arch.layers * boundary
        # autocast caches the copies of trainable weights until the forward ends; frozen ones die with their layer
        copies_forward = (arch.layers * layer_copies if counts.base_trainable else 0) + head_copy
        copies_saved, recomputed = head_copy, per_layer + layer_copies  # a layer at a time, again, in backward
    else:
        kept_less, copied_less = first_layer_savings(arch, counts, shape, cfg, device)
        layers_saved, recomputed = arch.layers * per_layer - kept_less, 0
        copies_forward = copies_saved = arch.layers * layer_copies + head_copy - copied_less
    loss_saved = (
        4 * T * h
        + 4 * T
        + (4 * T * h if counts.base_trainable else 0)  # final norm
        + ((2 if autocast else 4) * b * K * h if counts.head_trainable else 0)  # head input
        + 4 * b * K * V
    )  # log-probabilities
    logits = mm * b * K * V + (4 * b * K * V if mm == 2 else 0)  # and their fp32 copy
    # backward of the loss: the gradients of the NLL and the log-softmax inputs (and their 16-bit cast)
    loss_backward = 8 * b * K * V + (mm * b * K * V if mm == 2 else 0)
    head_grad = 4 * counts.head if counts.head_trainable else 0
    head_grad_made = head_grad + (2 * counts.head if counts.head_trainable and autocast else 0)  # from 16 bits
    grads, anchors = counts.trainable_bytes, counts.anchored_bytes
    states = ADAMW_STATES * grads
    resident = counts.weight_bytes + anchors + states
    carried = grads if shape.accumulation > 1 else 0  # gradients accumulating over micro-batches
    saved = layers_saved + loss_saved
    phases = {
        "forward_end": resident + carried + saved + copies_forward + logits + anchors,
        # L2-SP's backward runs first: every anchored gradient, and for the last (largest) weight its saved
        # difference and pow's two temporaries; then the loss's, and the head's weight gradient (made anew, then
        # added to the one there)
        "backward_start": resident
        + saved
        + copies_saved
        + max(anchors + 3 * counts.largest_anchored_bytes, max(carried, anchors) + loss_backward + head_grad_made),
        "backward_layers": resident + max(carried, anchors, head_grad) + layers_saved + copies_saved + recomputed,
        # the embedding's dense gradient, added out of place to the tied head's
        "backward_end": resident
        + grads
        + per_layer
        + layer_copies
        + (boundary if checkpointing else 0)
        + (2 * head_grad if counts.tied else 0),
        "optimizer_step": resident + grads,
    }
    memory = {
        "process_baseline": baseline_bytes,
        "weights": counts.weight_bytes,
        "l2sp_anchors": anchors,
        "gradients": grads,
        "optimizer_states": states,
        "activations": layers_saved + loss_saved,
        "weight_copies_16bit": copies_forward,
        "l2sp_penalty": anchors,
        "loss_logits": logits,
        "peak": baseline_bytes + max(phases.values()),
    }
    flops = step_flops(arch, counts, shape, cfg)
    seconds = None
    if timed:
        seconds = flops / matmul_flops_per_s(precision_of(cfg), device, min(T, 4096), h, arch.intermediate)
    return Estimate(
        method=cfg.method.name,
        precision=precision_of(cfg),
        checkpointing=checkpointing,
        device=device,
        parameters={"total": counts.total, "trainable": counts.trainable, "trainable_share": counts.share},
        shape={
            "rows": shape.rows,
            "seq_len": shape.seq_len,
            "kept_positions": shape.kept,
            "accumulation": shape.accumulation,
            "tokens_per_micro_batch": shape.tokens,
        },
        memory_bytes=memory,
        activations_per_layer_bytes=parts | {"weight_copies_16bit": layer_copies},
        phases_bytes=phases,
        optimizer_8bit_states_bytes=int(counts.trainable * ADAMW_8BIT_BYTES)
        if device == "cuda" and _has_bitsandbytes()
        else None,
        flops_per_step=flops,
        tokens_per_step=shape.tokens * shape.accumulation,
        seconds_per_step=seconds,
    )


def _has_bitsandbytes() -> bool:
    import importlib.util

    return importlib.util.find_spec("bitsandbytes") is not None
