"""The report's figures, drawn from the run's artifacts with matplotlib's SVG canvas and returned as inline SVG
text (no files, no network). Each function returns None when its artifact lacks what it draws."""

from __future__ import annotations

import io
import math

from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure

from ..core.artifacts import ConfusionMatrix, Interval

PHASE_COLOURS = {"warmup": "#fde68a", "stable": "#bbf7d0", "decay": "#bfdbfe"}
SYSTEM_COLOURS = {"base": "#94a3b8", "tuned": "#2563eb", "model": "#2563eb"}


def svg(fig: Figure) -> str:
    """The figure as an inline <svg> element (the XML prologue dropped)."""
    buf = io.StringIO()
    FigureCanvasSVG(fig).print_svg(buf)
    text = buf.getvalue()
    return text[text.index("<svg") :]


def _figure(width: float = 8, height: float = 3.2) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def training(rows: list[dict]) -> str | None:
    """Loss and learning rate per step, the warmup/stable/decay phases shaded."""
    steps = [r for r in rows if "loss" in r and "step" in r]
    if not steps:
        return None
    fig = _figure()
    ax = fig.add_subplot()
    x = [r["step"] for r in steps]
    start = 0
    for i in range(1, len(steps) + 1):  # shade each run of one phase
        if i == len(steps) or steps[i].get("phase") != steps[start].get("phase"):
            phase = steps[start].get("phase")
            if phase in PHASE_COLOURS:
                ax.axvspan(x[start] - 0.5, x[i - 1] + 0.5, color=PHASE_COLOURS[phase], alpha=0.6, lw=0, label=phase)
            start = i
    ax.plot(x, [r["loss"] for r in steps], color="#111827", lw=1.2, label="training loss")
    ax.set(xlabel="optimizer step", ylabel="loss (nats per trained token)", title="Training loss and learning rate")
    lr = ax.twinx()
    lr.plot(x, [r.get("learning_rate", math.nan) for r in steps], color="#dc2626", lw=1, ls="--", label="learning rate")
    lr.set_ylabel("learning rate")
    handles = ax.get_legend_handles_labels()
    more = lr.get_legend_handles_labels()
    ax.legend(handles[0] + more[0], handles[1] + more[1], fontsize=8, loc="upper right")
    return svg(fig)


def validation(rows: list[dict], best_step: int | None) -> str | None:
    """Each validation term and the composite score per evaluation, the restored best step marked."""
    evals = [r for r in rows if "eval_composite" in r]
    if not evals:
        return None
    fig = _figure()
    ax = fig.add_subplot()
    x = [r["step"] for r in evals]
    terms = sorted(
        {
            k
            for r in evals
            for k in r
            if k.startswith("eval_") and k not in ("eval_runtime", "eval_samples_per_second", "eval_steps_per_second")
        }
    )
    for key in terms:
        ax.plot(
            x,
            [r.get(key, math.nan) for r in evals],
            marker="o",
            lw=2 if key == "eval_composite" else 1,
            label=key.removeprefix("eval_"),
        )
    if best_step is not None:
        ax.axvline(best_step, color="#16a34a", ls=":", label=f"best (step {best_step})")
    ax.set(xlabel="optimizer step", ylabel="score", title="Validation: composite score and its terms")
    ax.legend(fontsize=8)
    return svg(fig)


def throughput(rows: list[dict]) -> str | None:
    """Useful (non-padding) tokens per second and the padding share per step."""
    steps = [r for r in rows if "useful_tokens_per_s" in r]
    if not steps:
        return None
    fig = _figure(height=2.8)
    ax = fig.add_subplot()
    x = [r["step"] for r in steps]
    ax.plot(x, [r["useful_tokens_per_s"] for r in steps], color="#2563eb", lw=1, label="useful tokens/s")
    ax.set(xlabel="optimizer step", ylabel="tokens per second", title="Throughput and padding")
    pad = ax.twinx()
    pad.plot(x, [100 * r.get("padding_share", math.nan) for r in steps], color="#f97316", lw=1, label="padding %")
    pad.set_ylabel("padding (% of tokens)")
    ax.legend(loc="lower left", fontsize=8)
    pad.legend(loc="lower right", fontsize=8)
    return svg(fig)


def bars(
    title: str,
    unit: str,
    groups: dict[str, dict[str, Interval | float | None]],
    *,
    scale: float = 1.0,
    horizontal: bool = False,
) -> str | None:
    """Grouped bars: category -> system -> value or Interval (error bars from the interval)."""
    categories = list(groups)
    systems = list(dict.fromkeys(s for g in groups.values() for s in g))
    if not categories or not systems:
        return None
    fig = _figure(height=max(2.6, 0.35 * len(categories) * len(systems) + 1) if horizontal else 3.2)
    ax = fig.add_subplot()
    width = 0.8 / len(systems)
    for k, system in enumerate(systems):
        values, errors = [], [[], []]
        for category in categories:
            found = groups[category].get(system)
            interval = isinstance(found, Interval)
            value, low, high = (found.value, found.low, found.high) if interval else (found, None, None)
            value = math.nan if value is None else scale * value
            values.append(value)
            errors[0].append(value - scale * low if low is not None and not math.isnan(value) else 0)
            errors[1].append(scale * high - value if high is not None and not math.isnan(value) else 0)
        where = [i + (k - (len(systems) - 1) / 2) * width for i in range(len(categories))]
        draw = ax.barh if horizontal else ax.bar
        draw(
            where,
            values,
            width,
            **({"xerr": errors} if horizontal else {"yerr": errors}),
            capsize=2,
            label=system,
            color=SYSTEM_COLOURS.get(system),
        )
    if horizontal:
        ax.set_yticks(range(len(categories)), categories, fontsize=8)
        ax.invert_yaxis()
        ax.set(xlabel=unit, title=title)
    else:
        ax.set_xticks(range(len(categories)), categories, fontsize=8, rotation=20 if len(categories) > 5 else 0)
        ax.set(ylabel=unit, title=title)
    if len(systems) > 1:
        ax.legend(fontsize=8)
    return svg(fig)


def confusion(matrix: ConfusionMatrix, title: str) -> str | None:
    """A confusion-matrix heatmap (rows gold, columns predicted) with counts in the cells."""
    counts = matrix.counts
    if not counts:
        return None
    fig = _figure(width=1.2 + 0.75 * len(matrix.predicted), height=1.0 + 0.6 * len(matrix.gold))
    ax = fig.add_subplot()
    ax.imshow(counts, cmap="Blues")
    top = max(max(row) for row in counts) or 1
    for i, row in enumerate(counts):
        for j, n in enumerate(row):
            ax.text(j, i, str(n), ha="center", va="center", fontsize=8, color="white" if n > top / 2 else "black")
    ax.set_xticks(range(len(matrix.predicted)), matrix.predicted, rotation=30, fontsize=8)
    ax.set_yticks(range(len(matrix.gold)), matrix.gold, fontsize=8)
    ax.set(xlabel="predicted", ylabel="gold", title=title)
    return svg(fig)
