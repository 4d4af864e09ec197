"""The compute precision of every place that runs a model, decided by the hardware.

`model.precision: auto` takes bf16 where the hardware runs it natively (CUDA with bf16; CPUs where oneDNN reports
bf16 support, i.e. AVX512-BF16 or AMX), fp16 with loss scaling on CUDA without bf16, and fp32 otherwise. On a CPU
with AVX2 only, torch's bf16 matmul is one to two orders of magnitude slower than fp32, so bf16 asked for there
still runs but is warned about once, with the slowdown measured on this machine.

Mixed precision keeps the weights in `model.dtype` (fp32 by default) and runs matmuls under autocast.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import statistics
import time
from dataclasses import asdict, dataclass

import torch

from ..errors import ConfigError

log = logging.getLogger(__name__)

CHOICES = ("auto", "fp32", "bf16", "fp16")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Hardware:
    """What the machine offers for 16-bit compute."""

    device: str  # cuda | cpu
    cuda_bf16: bool  # the GPU computes in bf16 (Ampere and later)
    cpu_bf16: bool  # oneDNN's bf16 kernels are native on this CPU (AVX512-BF16 or AMX)
    cpu_capability: str  # torch's CPU dispatch level: AVX2, AVX512, ...

    @property
    def native_bf16(self) -> bool:
        return self.cuda_bf16 if self.device == "cuda" else self.cpu_bf16


@functools.lru_cache(maxsize=1)
def hardware() -> Hardware:
    """The machine's capabilities, probed once per process (tests replace this function to force a branch)."""
    cuda = torch.cuda.is_available()
    return Hardware(
        device="cuda" if cuda else "cpu",
        cuda_bf16=cuda and torch.cuda.is_bf16_supported(),
        cpu_bf16=bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()),
        cpu_capability=torch.backends.cpu.get_cpu_capability(),
    )


@dataclass(frozen=True)
class Precision:
    """The precision chosen for one process: `name` is what matmuls run in."""

    name: str  # fp32 | bf16 | fp16
    requested: str  # auto | fp32 | bf16 | fp16
    device: str
    native: bool  # the hardware runs `name` at full speed
    reason: str

    @property
    def dtype(self) -> torch.dtype:
        return DTYPES[self.name]

    @property
    def mixed(self) -> bool:
        return self.name != "fp32"

    def autocast(self):
        """The autocast context for inference under this precision (a no-op for fp32)."""
        if not self.mixed:
            return contextlib.nullcontext()
        return torch.autocast(self.device, dtype=self.dtype)

    def trainer_flags(self) -> dict[str, bool]:
        """transformers.TrainingArguments' mixed-precision switches (fp16 brings loss scaling)."""
        return {"bf16": self.name == "bf16", "fp16": self.name == "fp16"}

    @property
    def accelerate(self) -> str:
        """accelerate's mixed_precision value."""
        return {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}[self.name]

    def to_json(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.name} ({self.reason})"


def choose(requested: str = "auto", hw: Hardware | None = None, *, warn: bool = True) -> Precision:
    """The precision to compute in on this machine for the configured `model.precision`; `warn=False` for
    plans that only consider a precision."""
    if requested not in CHOICES:
        raise ConfigError(f"expected one of {', '.join(CHOICES)}, got {requested!r}", field="model.precision")
    hw = hw or hardware()
    cuda = hw.device == "cuda"
    if requested == "auto":
        if hw.native_bf16:
            what = "the GPU computes in bf16" if cuda else f"this CPU has native bf16 ({hw.cpu_capability})"
            return Precision("bf16", requested, hw.device, True, f"auto: {what}")
        if cuda:
            return Precision("fp16", requested, hw.device, True, "auto: the GPU has no bf16; fp16 with loss scaling")
        return Precision(
            "fp32", requested, hw.device, True, f"auto: this CPU has no native bf16 ({hw.cpu_capability} only)"
        )
    if requested == "fp16" and not cuda:
        raise ConfigError(
            "fp16 (float16 with loss scaling) needs a CUDA GPU; use auto, fp32 or bf16 here", field="model.precision"
        )
    native = requested == "fp32" or (requested == "fp16" and cuda) or (requested == "bf16" and hw.native_bf16)
    if warn and not native:
        _warn_slow(requested, hw.device)
    return Precision(requested, requested, hw.device, native, "as configured" + ("" if native else ", not native here"))


@functools.cache
def _warn_slow(name: str, device: str) -> None:
    """Warn once per process that `name` is emulated here, with the matmul slowdown against fp32."""
    fast = matmul_flops_per_s("fp32", device, 256, 256, 256)
    slow = matmul_flops_per_s(name, device, 256, 256, 256)
    log.warning(
        "model.precision=%s: this machine has no native %s; its matmuls run %.0fx slower than fp32 here "
        "(measured). model.precision=auto would choose fp32.",
        name,
        name,
        fast / slow,
    )


@functools.lru_cache(maxsize=32)
def matmul_flops_per_s(precision: str, device: str, m: int, k: int, n: int) -> float:
    """Measured throughput of an (m×k)·(k×n) matmul in `precision` on `device`: the median of runs repeated for
    about a fifth of a second once the device is spun up (a single short run is at the mercy of clock and neighbours); one run
    when that alone is slow (emulated bf16 on a CPU takes seconds for what fp32 does in milliseconds)."""
    a = torch.randn(m, k, dtype=DTYPES[precision], device=device)
    b = torch.randn(k, n, dtype=DTYPES[precision], device=device)
    _spin_up(device)
    times: list[float] = []
    a @ b  # kernel selection and first-touch allocation
    while len(times) < 3 or sum(times) < 0.2:
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        a @ b
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
        if times[-1] > 0.5:
            break
    return 2 * m * k * n / statistics.median(times)


@functools.cache
def _spin_up(device: str) -> None:
    """Half a second of fp32 matmuls, once per process: a CPU's thread pool and clock take that long to reach the
    speed they then hold (measured before, the first matmuls run a third slower)."""
    a = torch.randn(512, 512, device=device)
    start = time.perf_counter()
    while time.perf_counter() - start < 0.5:
        a @ a
    if device == "cuda":
        torch.cuda.synchronize()
