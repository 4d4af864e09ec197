"""`model`: the base model and the precision every stage runs it in."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import Section


class ModelConfig(Section):
    spec: str = Field(
        "embedded:smollm2-135m-instruct",
        description="embedded:NAME, a local Hugging Face folder, a .gguf file or a hub id",
    )
    revision: str | None = None
    trust_remote_code: bool = False
    dtype: Literal["float32", "bfloat16", "float16"] = Field(
        "float32", description="dtype the weights are loaded in (mixed precision keeps float32 master weights)"
    )
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto",
        description="what matmuls compute in, for training and every stage that runs the model: auto "
        "takes bf16 where the hardware runs it natively (CUDA with bf16, CPUs with "
        "AVX512-BF16/AMX), fp16 with loss scaling on other GPUs, fp32 otherwise",
    )
