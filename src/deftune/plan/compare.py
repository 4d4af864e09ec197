"""`deftune plan --compare` and `--measure`: every method × {fp32, bf16} × {checkpointing off, on}, estimated and —
with `measure` — run for a few steps, each in a fresh process (`plan.measure`) so that numbers don't leak into each
other; then the seed guide's efficiency claims checked against the figures."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass

from .. import data, methods
from ..config import Config
from ..core import models
from ..core.precision import choose as choose_precision
from ..errors import DeftuneError
from ..train import estimate as plan

log = logging.getLogger(__name__)

MIXED_PRECISION_SAVINGS = (30, 50)  # the seed: "mixed precision ... typically reduces memory usage by 30-50%"
WORKER_TIMEOUT_S = 1800


def variants(cfg: Config, device: str) -> list[Config]:
    """`cfg` with every registered method that runs on `device` (QLoRA only on CUDA with bitsandbytes), fp32
    and bf16, checkpointing off and on, leaving out combinations a method is incompatible with (prefix tuning
    with checkpointing)."""
    found = [
        cfg.model_copy(
            update={
                "method": cfg.method.model_copy(update={"name": method.name}),
                "model": cfg.model.model_copy(update={"precision": precision}),
                "training": cfg.training.model_copy(update={"gradient_checkpointing": ckpt}),
            }
        )
        for method in methods.REGISTRY.values()
        if not (method.unavailable and method.unavailable(device))
        for precision in ("fp32", "bf16")
        for ckpt in (False, True)
    ]
    return [c for c in found if not any(rule.when(c) for rule in methods.get(c.method.name).incompatible)]


def _run_worker(spec: dict) -> dict:
    command = [sys.executable, "-m", "deftune.plan.measure", json.dumps(spec)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=WORKER_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"no result within {WORKER_TIMEOUT_S} s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit status {done.returncode}: {last}"}
    return json.loads(lines[-1])


def baseline_bytes() -> int:
    """Resident memory of a fresh process that imported what a measured run imports and loaded nothing."""
    result = _run_worker({"baseline": True})
    if "error" in result:
        raise DeftuneError(f"could not measure the process baseline: {result['error']}")
    return result["rss_bytes"]


def _measure_once(cfg: Config, shape: plan.Shape, trained_per_row: int | None, steps: int, glibc_default: bool) -> dict:
    result = _run_worker(
        {
            "config": cfg.model_dump(mode="json"),
            "rows": shape.rows,
            "seq_len": shape.seq_len,
            "trained_per_row": trained_per_row or shape.seq_len,
            "steps": steps,
            "glibc_default": glibc_default,
        }
    )
    if "step_seconds" in result:  # the first step warms up (allocations, optimizer states)
        times = result["step_seconds"][1:] or result["step_seconds"]
        result["seconds_per_step"] = sorted(times)[len(times) // 2] * shape.accumulation
    return result


def measure(cfg: Config, *, trained_per_row: int | None, steps: int, device: str = "cpu") -> dict:
    """Run `steps` optimizer steps of `cfg` on a micro-batch of the planned shape in a fresh process: peak memory
    in bytes and step times in seconds (or an `error`). On CPU twice: `peak_bytes` with freed memory returned to the
    system at once (the memory the step needs), and `glibc_default` as the engine runs by default, whose heap
    keeps freed memory (its step times are the ones reported)."""
    shape = plan.shape_of(cfg, trained_per_row)
    result = _measure_once(cfg, shape, trained_per_row, steps, glibc_default=False)
    if device == "cpu" and "error" not in result:
        default = _measure_once(cfg, shape, trained_per_row, steps, glibc_default=True)
        result["glibc_default"] = default
        if "seconds_per_step" in default:
            result["seconds_per_step"] = default["seconds_per_step"]
    return result


@dataclass
class Row:
    estimate: plan.Estimate
    measured: dict | None = None

    @property
    def measured_peak(self) -> int | None:
        return (self.measured or {}).get("peak_bytes")

    @property
    def glibc_peak(self) -> int | None:
        return (self.measured or {}).get("glibc_default", {}).get("peak_bytes")

    def error_pct(self, peak: int | None = None) -> float | None:
        """The estimate's error against `peak` (default: the measured peak), in % of it."""
        peak = peak or self.measured_peak
        return 100 * (self.estimate.peak_bytes - peak) / peak if peak else None

    def to_json(self) -> dict:
        return {
            "estimate": self.estimate.to_json(),
            "measured": self.measured,
            "error_pct": self.error_pct(),
            "glibc_default_error_pct": self.error_pct(self.glibc_peak) if self.glibc_peak else None,
        }


def run(
    configs: list[Config],
    *,
    trained_per_row: int | None,
    device: str,
    baseline: int = 0,
    measure_steps: int = 0,
    progress: Callable[[str], None] = lambda _: None,
) -> list[Row]:
    """Estimate each configuration and, with `measure_steps`, measure it too."""
    rows = []
    for i, cfg in enumerate(configs, 1):
        est = plan.estimate(cfg, trained_per_row=trained_per_row, device=device, baseline_bytes=baseline)
        row = Row(est)
        if measure_steps and not choose_precision(cfg.model.precision, warn=False).native:
            row.measured = {
                "skipped": f"{est.precision} is not native on this {device} (emulated: one to two orders "
                "of magnitude slower); not measured"
            }
        elif measure_steps:
            progress(f"measuring {i}/{len(configs)}: {label(est)}")
            row.measured = measure(cfg, trained_per_row=trained_per_row, steps=measure_steps, device=device)
            if "error" in row.measured:
                log.warning("%s: %s", label(est), row.measured["error"])
        rows.append(row)
    return rows


def label(est: plan.Estimate) -> str:
    return f"{est.method} {est.precision}{' +ckpt' if est.checkpointing else ''}"


def _training_bytes(row: Row, measured: bool) -> int | None:
    """Peak memory less the process baseline: what training itself takes."""
    peak = row.measured_peak if measured else row.estimate.peak_bytes
    return peak - row.estimate.memory_bytes["process_baseline"] if peak else None


def savings(rows: list[Row], *, measured: bool) -> dict[int, float | None]:
    """Per row (by index), the saving of training memory versus full fine-tuning in fp32 without checkpointing."""
    reference = next(
        (
            r
            for r in rows
            if r.estimate.method == "full" and r.estimate.precision == "fp32" and not r.estimate.checkpointing
        ),
        None,
    )
    base = _training_bytes(reference, measured) if reference else None
    return {
        i: (100 * (1 - used / base) if base and used else None)
        for i, r in enumerate(rows)
        for used in [_training_bytes(r, measured)]
    }


def _verdict(value: float, claimed: tuple[float, float]) -> str:
    return "holds" if claimed[0] - 0.5 <= value <= claimed[1] + 0.5 else "does not hold"


def _range(claimed: tuple[float, float]) -> str:
    if claimed[0] == claimed[1]:
        return f"{claimed[0]:g}%"
    return f"<{claimed[1]:g}%" if claimed[0] == 0 else f"{claimed[0]:g}–{claimed[1]:g}%"


def _saving(rows: list[Row], i: int, reference: int) -> tuple[float, str] | None:
    """How far row i's training memory is below the reference row's, in %: measured where both are, else
    estimated; with which of the two."""
    for measured in (True, False):
        used, base = _training_bytes(rows[i], measured), _training_bytes(rows[reference], measured)
        if used and base:
            return 100 * (1 - used / base), "measured" if measured else "estimated"
    return None


def seed_claims(rows: list[Row]) -> list[dict]:
    """The seed's efficiency claims against these figures: parameters modified (exact counts) and memory savings
    per method (fp32 without checkpointing, versus full fine-tuning the same way), and mixed precision's saving per
    method and checkpointing setting; measured where measured, else estimated."""
    find = {(r.estimate.method, r.estimate.precision, r.estimate.checkpointing): i for i, r in enumerate(rows)}
    full = find.get(("full", "fp32", False))
    claims = []

    def add(claim: str, value: float, claimed: tuple[float, float], basis: str) -> None:
        claims.append(
            {
                "claim": claim.format(_range(claimed)),
                "value_pct": value,
                "verdict": _verdict(value, claimed),
                "basis": basis,
            }
        )

    for method, claim in ((m.name, m.claims) for m in methods.REGISTRY.values() if m.claims):
        i = find.get((method, "fp32", False))
        if i is None:
            continue
        add(
            f"{method}: parameters modified {{}}",
            100 * rows[i].estimate.parameters["trainable_share"],
            claim["modified"],
            "exact count",
        )
        saved = _saving(rows, i, full) if method != "full" and full is not None else None
        if saved:
            add(f"{method}: memory savings {{}}", saved[0], claim["savings"], f"{saved[1]}, fp32, no checkpointing")
    for (method, precision, ckpt), i in find.items():
        fp32 = find.get((method, "fp32", ckpt))
        saved = _saving(rows, i, fp32) if precision == "bf16" and fp32 is not None else None
        if saved:
            add(
                f"mixed precision saves {{}} ({method}{', checkpointing' if ckpt else ''})",
                saved[0],
                MIXED_PRECISION_SAVINGS,
                f"{saved[1]}, bf16 vs fp32",
            )
    return claims


def why(rows: list[Row]) -> str:
    """Plain sentences on what bounds a PEFT method's saving (fp32 estimates) and where the seed's ranges come
    from instead (checkpointing)."""
    find = {
        (r.estimate.method, r.estimate.checkpointing): i for i, r in enumerate(rows) if r.estimate.precision == "fp32"
    }
    if not {("full", False), ("lora", False), ("lora", True)} <= find.keys():
        return ""
    full, lora = rows[find["full", False]].estimate.memory_bytes, rows[find["lora", False]].estimate.memory_bytes
    saveable = full["gradients"] + full["optimizer_states"] + 2 * full["l2sp_anchors"]
    training = lora["peak"] - lora["process_baseline"]
    with_checkpointing, basis = _saving(rows, find["lora", True], find["full", False])
    return (
        f"Full fine-tuning's gradients, optimizer states and L2-SP anchors and penalty come to "
        f"{saveable / 2**20:,.0f} MiB: all that a PEFT method can save. Activations, which every method keeps, "
        f"are {lora['activations'] / 2**20:,.0f} MiB for LoRA, {100 * lora['activations'] / training:.0f}% of "
        f"its training memory; gradient checkpointing cuts them, and LoRA with checkpointing is "
        f"{with_checkpointing:.0f}% below full fine-tuning without ({basis}): savings of the seed's size come "
        f"from checkpointing, not from the share of parameters trained."
    )


def trained_per_row(cfg: Config) -> int | None:
    """The most trained tokens of one training example, rendered as the engine renders them (a seeded sample of at
    most 512 training records); None, with a warning, when the data cannot be read."""
    try:
        splits = data.load_splits(cfg.data.model_copy(update={"max_train_examples": 512}), cfg.run.seed)
        tokenizer = models.load_tokenizer(
            models.resolve(cfg.model.spec), revision=cfg.model.revision, trust_remote_code=cfg.model.trust_remote_code
        )
        rendered, _ = data.renderer_for(tokenizer, cfg.data, *splits.values()).render_all(splits["train"].records)
    except DeftuneError as exc:
        log.warning("planning as if every position were trained: cannot read the training data (%s)", exc)
        return None
    return max((r.n_trained for r in rendered), default=None)


@dataclass
class Plan:
    """The plan of one configuration, or of all of them with `compare`; `to_json` is plan.json."""

    cfg: Config
    arch: plan.Arch
    device: str
    trained_per_row: int | None
    baseline_bytes: int
    rows: list[Row]
    compare: bool

    def to_json(self) -> dict:
        measured = all(r.measured_peak for r in self.rows)
        configurations = [r.to_json() for r in self.rows]
        if self.compare:
            estimated, seen = savings(self.rows, measured=False), savings(self.rows, measured=True)
            for i, row in enumerate(configurations):
                row["savings_vs_full_fp32_pct"] = {"estimated": estimated[i], "measured": seen[i] if measured else None}
        data = {
            "model": self.cfg.model.spec,
            "architecture": asdict(self.arch),
            "device": self.device,
            "trained_tokens_per_example": self.trained_per_row,
            "trained_positions": "from the training data" if self.trained_per_row else "every position assumed",
            "process_baseline_bytes": self.baseline_bytes,
            "configurations": configurations,
        }
        if self.compare:
            data["seed_claims"] = seed_claims(self.rows)
            data["summary"] = why(self.rows)
        return data


def make(
    cfg: Config, *, compare: bool = False, measure_steps: int = 0, progress: Callable[[str], None] = lambda _: None
) -> Plan:
    """Plan `cfg` (or, with `compare`, all its variants), measuring each with `measure_steps` steps when asked."""
    device = plan.default_device()
    arch, _ = plan.arch_and_counts(cfg)
    progress("reading the training data for trained positions")
    trained = trained_per_row(cfg)
    baseline = 0
    if device == "cpu":
        progress("measuring the process baseline")
        baseline = baseline_bytes()
    configs = variants(cfg, device) if compare else [cfg]
    rows = run(
        configs,
        trained_per_row=trained,
        device=device,
        baseline=baseline,
        measure_steps=measure_steps,
        progress=progress,
    )
    return Plan(cfg, arch, device, trained, baseline, rows, compare)
