"""Precision follows the hardware: every branch forced with a mocked capability, not only this machine's."""

import logging

import pytest
import torch

from deftune.core import precision
from deftune.core.precision import Hardware, choose
from deftune.errors import ConfigError

AVX2 = Hardware("cpu", cuda_bf16=False, cpu_bf16=False, cpu_capability="AVX2")
AMX = Hardware("cpu", cuda_bf16=False, cpu_bf16=True, cpu_capability="AVX512")
AMPERE = Hardware("cuda", cuda_bf16=True, cpu_bf16=False, cpu_capability="AVX2")
TURING = Hardware("cuda", cuda_bf16=False, cpu_bf16=False, cpu_capability="AVX2")


@pytest.mark.parametrize(
    "hw, expected, native", [(AVX2, "fp32", True), (AMX, "bf16", True), (AMPERE, "bf16", True), (TURING, "fp16", True)]
)
def test_auto_takes_what_the_hardware_runs_natively(hw, expected, native):
    chosen = choose("auto", hw)
    assert (chosen.name, chosen.native, chosen.device) == (expected, native, hw.device)
    assert chosen.trainer_flags() == {"bf16": expected == "bf16", "fp16": expected == "fp16"}
    assert chosen.reason.startswith("auto:")


def test_auto_on_an_avx2_cpu_says_why():
    assert "no native bf16 (AVX2 only)" in choose("auto", AVX2).reason


def test_explicit_bf16_without_native_support_runs_but_warns_once_with_the_slowdown(monkeypatch, caplog):
    precision._warn_slow.cache_clear()
    speeds = {"fp32": 100e9, "bf16": 0.5e9}
    monkeypatch.setattr(precision, "matmul_flops_per_s", lambda p, *shape: speeds[p])
    with caplog.at_level(logging.WARNING, logger="deftune.core.precision"):
        chosen = choose("bf16", AVX2)
        choose("bf16", AVX2)
    assert chosen.name == "bf16" and not chosen.native and "not native" in chosen.reason
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "200x slower than fp32" in warnings[0]
    precision._warn_slow.cache_clear()


def test_explicit_bf16_on_native_hardware_is_quiet(caplog):
    with caplog.at_level(logging.WARNING, logger="deftune.core.precision"):
        assert choose("bf16", AMX).native and choose("bf16", AMPERE).native
    assert not caplog.records


def test_fp16_needs_cuda_and_fp32_is_always_native():
    with pytest.raises(ConfigError, match="model.precision: fp16 .* needs a CUDA GPU"):
        choose("fp16", AMX)
    assert choose("fp16", TURING).trainer_flags() == {"bf16": False, "fp16": True}
    assert all(choose("fp32", hw).native and not choose("fp32", hw).mixed for hw in (AVX2, AMX, AMPERE))


def test_autocast_matches_the_choice():
    with choose("fp32", AVX2).autocast():
        assert not torch.is_autocast_enabled("cpu")
    with choose("bf16", AMX).autocast():
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16


def test_the_probe_reports_this_machine():
    hw = precision.hardware()
    assert hw.device in ("cpu", "cuda") and isinstance(hw.cpu_bf16, bool) and hw.cpu_capability


def test_matmul_speed_is_measured():
    assert precision.matmul_flops_per_s("fp32", "cpu", 64, 64, 64) > 1e6
