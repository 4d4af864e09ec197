"""Figures drawn from the audit's JSON (so a report can redraw them from audit.json alone), each saved as PNG and
SVG with matplotlib's Agg canvas."""

from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def _histogram(ax, histogram: dict, label: str) -> None:
    edges, counts = histogram["edges"], histogram["counts"]
    ax.stairs(counts, edges, fill=True, alpha=0.5, label=label)


def _token_lengths(checks: dict):
    tokens = checks.get("shape", {}).get("tokens")
    if not tokens or not tokens["total"].get("count"):
        return None
    fig = Figure(figsize=(7, 3.5))
    ax = fig.add_subplot()
    for part in ("prompt", "response"):
        _histogram(ax, tokens[part]["histogram"], part)
    if checks["shape"].get("max_length"):
        ax.axvline(checks["shape"]["max_length"], color="red", linestyle="--", label="max_length")
    ax.set(xlabel="tokens", ylabel="records", title="Token lengths under the model's tokenizer")
    ax.legend()
    return fig, "Token lengths", "tokens"


def _readability(checks: dict):
    kinds = {k: v["readability"]["flesch_kincaid_grade"] for k, v in checks.get("style", {}).items()}
    kinds = {k: v for k, v in kinds.items() if v.get("count")}
    if not kinds:
        return None
    fig = Figure(figsize=(7, 3.5))
    ax = fig.add_subplot()
    for kind, dist in kinds.items():
        _histogram(ax, dist["histogram"], kind)
    ax.set(xlabel="Flesch-Kincaid grade (US school grade)", ylabel="records", title="Readability")
    ax.legend()
    return fig, "Readability", "US school grade"


def _bars(title: str, unit: str, series: dict[str, dict[str, float]], *, size=(8, 3.5)):
    fig = Figure(figsize=size)
    ax = fig.add_subplot()
    names = list(next(iter(series.values())))
    width = 0.8 / len(series)
    for i, (label, values) in enumerate(series.items()):
        ax.bar([x + i * width for x in range(len(names))], [values.get(n) or 0 for n in names], width, label=label)
    ax.set_xticks(
        [x + width * (len(series) - 1) / 2 for x in range(len(names))], names, rotation=30, ha="right", fontsize=8
    )
    ax.set(ylabel=unit, title=title)
    if len(series) > 1:
        ax.legend()
    return fig, title, unit


def _topics(checks: dict):
    topics = checks.get("coverage", {}).get("topics")
    if not topics:
        return None
    names = {t["topic"]: "/".join(t["keywords"][:2]) for t in topics}
    series = {"train": {names[t["topic"]]: t["train_share"] for t in topics}}
    if topics[0]["eval_share"] is not None:
        series["eval"] = {names[t["topic"]]: t["eval_share"] for t in topics}
    return _bars("Topics (NMF on TF-IDF)", "share of records", series)


def _labels(checks: dict):
    labels = checks.get("shape", {}).get("labels")
    return _bars("Labels", "records", {"train": labels["counts"]}) if labels else None


def _groups(checks: dict):
    attributes = checks.get("bias", {}).get("attributes", {})
    counts = {
        f"{a}: {g}": v["records"] for a, data in attributes.items() for g, v in data["groups"].items() if v["records"]
    }
    return _bars("Group representation", "records", {"train": counts}, size=(9, 3.5)) if counts else None


FIGURES = {
    "token_lengths": _token_lengths,
    "readability": _readability,
    "topics": _topics,
    "labels": _labels,
    "groups": _groups,
}


def draw(checks: dict, out_dir: Path) -> list[dict]:
    """Draw every figure the data supports into `out_dir`; return their names, titles, units and files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    drawn = []
    for name, make in FIGURES.items():
        made = make(checks)
        if made is None:
            continue
        fig, title, unit = made
        FigureCanvasAgg(fig)
        fig.tight_layout()
        files = [f"{name}.{ext}" for ext in ("png", "svg")]
        for file in files:
            fig.savefig(out_dir / file, dpi=110)
        drawn.append({"name": name, "title": title, "unit": unit, "files": files})
    return drawn
