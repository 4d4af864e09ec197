"""Houlsby bottleneck adapters (method `adapter`, registered in methods.adapter): after the attention block and after the MLP of every decoder layer, the block's
output x becomes x + up(dropout(act(down(x)))), with `up` initialised to zero so that a new adapter changes nothing.

The adapters are inserted by wrapping `layer.self_attn` / `layer.mlp` (the original block stays as the wrapper's
`base_layer` child), so the model stays a plain `PreTrainedModel` that the Hugging Face Trainer, gradient
checkpointing and `generate` handle as usual. Saved like a PEFT adapter folder: `adapter_config.json` (with
`"method": "bottleneck_adapter"`) and `adapter_model.safetensors`, whose keys are `layers.<i>.<placement>.<down|up>.*`.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import ConfigError, DeftuneError, ModelError

METHOD = "bottleneck_adapter"
FORMAT_VERSION = 1
CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "adapter_model.safetensors"
NONLINEARITIES = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU}
# The attribute names a placement's block may have in a decoder layer, first match wins.
PLACEMENTS = {"attention": ("self_attn", "attn"), "mlp": ("mlp",)}
_SAVED_ONLY = ("method", "format_version", "base_model_name_or_path")


@dataclass
class BottleneckConfig:
    """Shape and placement of the adapters; dropout rates are per placement (attention side / MLP side)."""

    reduction_factor: int = 16  # bottleneck width = hidden_size // reduction_factor
    nonlinearity: str = "relu"
    attention_dropout: float = 0.0
    mlp_dropout: float = 0.0
    placement: tuple[str, ...] = ("attention", "mlp")

    def __post_init__(self):
        self.placement = tuple(self.placement)
        if type(self.reduction_factor) is not int or self.reduction_factor < 1:
            raise ConfigError(f"must be a positive integer, not {self.reduction_factor!r}", field="reduction_factor")
        if self.nonlinearity not in NONLINEARITIES:
            raise ConfigError(
                f"unknown nonlinearity {self.nonlinearity!r} (choose from {', '.join(NONLINEARITIES)})",
                field="nonlinearity",
            )
        for name in ("attention_dropout", "mlp_dropout"):
            rate = getattr(self, name)
            if type(rate) not in (int, float) or not 0 <= rate < 1:
                raise ConfigError(f"must be a number in [0, 1), not {rate!r}", field=name)
        unknown = [p for p in self.placement if p not in PLACEMENTS]
        if not self.placement or unknown or len(set(self.placement)) != len(self.placement):
            raise ConfigError(
                f"must be distinct names from {', '.join(PLACEMENTS)}, not {list(self.placement)}", field="placement"
            )

    def dropout(self, placement: str) -> float:
        return self.attention_dropout if placement == "attention" else self.mlp_dropout

    def to_json(self, base_model_name_or_path: str | None = None) -> str:
        """The saved form: this config plus the method, the format version and the base model's name or path."""
        data = {
            "method": METHOD,
            "format_version": FORMAT_VERSION,
            "base_model_name_or_path": base_model_name_or_path,
            **asdict(self),
        }
        return json.dumps(data, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> BottleneckConfig:
        """Parse `to_json` output; anything else (a PEFT config, another version, bad values) raises ModelError."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ModelError(f"not valid JSON: {exc}") from None
        if not isinstance(data, dict) or data.get("method") != METHOD:
            raise ModelError(f'not a bottleneck adapter config (no "method": "{METHOD}")')
        if data.get("format_version") != FORMAT_VERSION:
            raise ModelError(f"unsupported format_version {data.get('format_version')!r} (expected {FORMAT_VERSION})")
        fields = {k: v for k, v in data.items() if k not in _SAVED_ONLY}
        unknown = sorted(fields.keys() - cls.__dataclass_fields__.keys())
        if unknown:
            raise ModelError(f"unknown adapter config fields: {', '.join(unknown)}")
        try:
            return cls(**fields)
        except ConfigError as exc:
            raise ModelError(f"adapter config field {exc.field}: {exc.message}") from None


class BottleneckAdapter(nn.Module):
    """x + up(dropout(act(down(x)))). Weights are float32 whatever the base dtype (stable optimiser updates, as
    PEFT does for LoRA); the result is cast back to the input's dtype."""

    def __init__(self, hidden: int, bottleneck: int, nonlinearity: str, dropout: float, device=None):
        super().__init__()
        self.down = nn.Linear(hidden, bottleneck, device=device, dtype=torch.float32)
        self.act = NONLINEARITIES[nonlinearity]()
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.up = nn.Linear(bottleneck, hidden, device=device, dtype=torch.float32)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        delta = self.up(self.dropout(self.act(self.down(x.to(self.down.weight.dtype)))))
        return x + delta.to(x.dtype)


class AdapterWrapper(nn.Module):
    """Runs the original block (`base_layer`), then the adapter on its output, or on the first element of a tuple
    output (attention blocks return (output, weights))."""

    def __init__(self, base_layer: nn.Module, adapter: BottleneckAdapter, adapter_key: str, config: BottleneckConfig):
        super().__init__()
        self.base_layer = base_layer
        self.adapter = adapter
        self.adapter_key = adapter_key  # e.g. "layers.3.attention": the prefix of this adapter's saved weights
        self.adapter_config = config

    def forward(self, *args, **kwargs):
        out = self.base_layer(*args, **kwargs)
        if isinstance(out, tuple):
            return (self.adapter(out[0]), *out[1:])
        return self.adapter(out)

    def __getattr__(self, name: str):
        # Some modelling code reads attributes of the block from outside (e.g. `layer.self_attn.is_kv_shared_layer`).
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "base_layer":
                raise
            return getattr(self.base_layer, name)


def decoder_layers(model) -> nn.ModuleList:
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else model
    for name in ("layers", "h"):
        layers = getattr(decoder, name, None)
        if isinstance(layers, nn.ModuleList) and len(layers):
            return layers
    raise ModelError(
        f"{type(model).__name__}: no decoder layers found for bottleneck adapters (looked for "
        f"{type(decoder).__name__}.layers and .h, as in Llama/Mistral/Qwen or GPT-2 models)"
    )


def _block_name(model, index: int, layer: nn.Module, placement: str) -> str:
    for name in PLACEMENTS[placement]:
        if isinstance(getattr(layer, name, None), nn.Module):
            return name
    raise ModelError(
        f"{type(model).__name__}: decoder layer {index} ({type(layer).__name__}) has no {placement} "
        f"block (looked for .{' and .'.join(PLACEMENTS[placement])})"
    )


def _hidden_size(model) -> int:
    config = getattr(model, "config", None)
    hidden = getattr(config.get_text_config(), "hidden_size", None) if config is not None else None
    if not isinstance(hidden, int):
        raise ModelError(f"{type(model).__name__}: no hidden_size in the model config")
    return hidden


def _wrappers(model) -> list[AdapterWrapper]:
    return [m for m in model.modules() if isinstance(m, AdapterWrapper)]


def add_adapters(model, config: BottleneckConfig):
    """Insert adapters in place (in the model's train/eval mode, on each block's device), freeze every base
    parameter and leave only the adapters trainable. Returns the model."""
    if _wrappers(model):
        raise ModelError(f"{type(model).__name__} already has bottleneck adapters")
    layers = decoder_layers(model)
    blocks = [
        (layer, _block_name(model, i, layer, placement), f"layers.{i}.{placement}", config.dropout(placement))
        for i, layer in enumerate(layers)
        for placement in config.placement
    ]
    hidden = _hidden_size(model)
    bottleneck = hidden // config.reduction_factor
    if bottleneck < 1:
        raise ConfigError(f"{config.reduction_factor} exceeds the hidden size {hidden}", field="reduction_factor")
    for param in model.parameters():
        param.requires_grad_(False)
    for layer, name, key, dropout in blocks:
        block = getattr(layer, name)
        device = next(block.parameters(), torch.empty(0)).device
        adapter = BottleneckAdapter(hidden, bottleneck, config.nonlinearity, dropout, device=device)
        setattr(layer, name, AdapterWrapper(block, adapter, key, config).train(layer.training))
    return model


def adapter_state_dict(model) -> dict[str, torch.Tensor]:
    """The adapter weights only, keyed `layers.<i>.<placement>.<down|up>.<weight|bias>` (tensors share storage with
    the parameters)."""
    return {f"{w.adapter_key}.{k}": v for w in _wrappers(model) for k, v in w.adapter.state_dict().items()}


def save_adapters(model, directory: str | Path) -> Path:
    """Write `adapter_config.json` and `adapter_model.safetensors` to `directory` (temporary names, then renamed)."""
    from safetensors.torch import save_file

    wrappers = _wrappers(model)
    if not wrappers:
        raise ModelError(f"{type(model).__name__} has no bottleneck adapters to save")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in adapter_state_dict(model).items()}
    base = getattr(model, "name_or_path", None) or None
    weights_tmp, config_tmp = directory / f".{WEIGHTS_NAME}.tmp", directory / f".{CONFIG_NAME}.tmp"
    save_file(state, weights_tmp, metadata={"format": "pt"})
    config_tmp.write_text(wrappers[0].adapter_config.to_json(str(base) if base else None))
    os.replace(weights_tmp, directory / WEIGHTS_NAME)
    os.replace(config_tmp, directory / CONFIG_NAME)
    return directory


def _few(keys: list[str]) -> str:
    return ", ".join(keys[:3]) + (f" … ({len(keys)} in all)" if len(keys) > 3 else "")


def _load_state(model, state: dict[str, torch.Tensor]) -> None:
    expected = adapter_state_dict(model)
    missing, unexpected = sorted(expected.keys() - state.keys()), sorted(state.keys() - expected.keys())
    if missing or unexpected:
        raise ModelError(
            "adapter weights do not match adapter_config.json: "
            + "; ".join(
                f"{what} {_few(keys)}" for what, keys in (("missing", missing), ("unexpected", unexpected)) if keys
            )
        )
    for key, tensor in state.items():
        if tensor.shape != expected[key].shape:
            raise ModelError(
                f"adapter weight {key} has shape {tuple(tensor.shape)}, this base model needs "
                f"{tuple(expected[key].shape)} (other reduction factor or base model?)"
            )
    with torch.no_grad():
        for key, tensor in state.items():
            expected[key].copy_(tensor)


def load_adapters(base_model, directory: str | Path, *, trainable: bool = False):
    """Add the adapters saved in `directory` to `base_model` and load their weights (strictly). Without `trainable`
    the model is put in eval mode with every parameter frozen; with it, the adapters are trainable. On failure the
    model is left without adapters (base parameters stay frozen)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    directory = Path(directory)
    config_path, weights_path = directory / CONFIG_NAME, directory / WEIGHTS_NAME
    for path in (config_path, weights_path):
        if not path.is_file():
            raise ModelError(f"not a bottleneck adapter folder: no {path.name}", file=str(directory))
    try:
        config = BottleneckConfig.from_json(config_path.read_text())
    except (ModelError, OSError, UnicodeDecodeError) as exc:
        raise ModelError(getattr(exc, "message", str(exc)), file=str(config_path)) from None
    try:
        state = load_file(weights_path)
    except (SafetensorError, OSError) as exc:
        raise ModelError(f"cannot read adapter weights: {exc}", file=str(weights_path)) from None
    try:
        add_adapters(base_model, config)
    except DeftuneError as exc:
        raise ModelError(str(exc), file=str(directory)) from None
    try:
        _load_state(base_model, state)
    except ModelError as exc:
        remove_adapters(base_model)
        raise ModelError(exc.message, file=str(directory)) from None
    for wrapper in _wrappers(base_model):
        wrapper.adapter.requires_grad_(trainable)
    if not trainable:
        base_model.eval()
    return base_model


def is_adapter_dir(directory: str | Path) -> bool:
    """Whether `directory` holds a saved bottleneck adapter (not, e.g., a PEFT adapter)."""
    directory = Path(directory)
    try:
        data = json.loads((directory / CONFIG_NAME).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("method") == METHOD and (directory / WEIGHTS_NAME).is_file()


def remove_adapters(model):
    """Put the original blocks back (base parameters stay frozen). Returns the model."""
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, AdapterWrapper):
                setattr(module, name, child.base_layer)
    return model
