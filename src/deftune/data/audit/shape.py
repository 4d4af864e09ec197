"""Shape: token lengths under the model's tokenizer, what max_length drops and what truncation would cut, empty
fields, the label distribution and its imbalance, and the language mix (py3langid's bundled model, offline)."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .findings import CheckResult, Finding, distribution, mention, pct

if TYPE_CHECKING:
    from .context import Context

LANGUAGE_CHARS = 400  # characters of each record that language identification reads


def _lengths(ctx: Context) -> tuple[dict, list[Finding]]:
    rendering, ids, limit = ctx.rendering, ctx.train.ids, ctx.renderer.max_length
    ok = rendering.ok
    data = {
        "tokens": {
            "prompt": distribution((rendering.total - rendering.trained)[ok], "tokens"),
            "response": distribution(rendering.trained[ok], "tokens"),
            "total": distribution(rendering.total[ok], "tokens"),
        },
        "max_length": limit,
    }
    findings = []
    over = np.flatnonzero(rendering.beyond > 0)
    if len(over):
        cut, cut_trained = int(rendering.beyond[over].sum()), int(rendering.trained_beyond[over].sum())
        lost = int((rendering.trained_beyond[over] == rendering.trained[over]).sum())
        data["over_max_length"] = {
            "records": len(over),
            "tokens_cut": cut,
            "trained_tokens_cut": cut_trained,
            "answers_lost": lost,
            "unit": "tokens",
        }
        findings.append(
            Finding(
                "shape",
                "warning",
                "over-max-length",
                f"{len(over)} records ({pct(len(over) / len(ids))}) are longer than data.max_length={limit} tokens and "
                f"will be dropped from training: {mention(ids[over])}; cutting them to {limit} tokens instead would "
                f"remove {cut} tokens, {cut_trained} of them answer tokens ({lost} answers entirely)",
                list(ids[over]),
            )
        )
    return data, findings


def _input_cut(ctx: Context) -> tuple[dict, list[Finding]]:
    """Classification texts longer than data.max_input_tokens are cut in the prompt."""
    limit, texts = ctx.renderer.max_input_tokens, ctx.train.prompts
    lengths = np.array([len(t) for t in ctx.tokenizer(texts, add_special_tokens=False)["input_ids"]])
    data = {"text_tokens": distribution(lengths, "tokens"), "max_input_tokens": limit}
    cut = np.flatnonzero(lengths > limit) if limit else np.array([], dtype=int)
    if not len(cut):
        return data, []
    removed = int((lengths[cut] - limit).sum())
    data["input_cut"] = {"records": len(cut), "tokens_cut": removed, "unit": "tokens"}
    return data, [
        Finding(
            "shape",
            "info",
            "input-truncated",
            f"{len(cut)} texts ({pct(len(cut) / len(texts))}) are longer than data.max_input_tokens="
            f"{limit} and are cut in the prompt ({removed} tokens, "
            f"{pct(removed / lengths.sum())} of all text tokens): {mention(ctx.train.ids[cut])}",
            list(ctx.train.ids[cut]),
        )
    ]


def _empty(ctx: Context) -> tuple[dict, list[Finding]]:
    train, findings, data = ctx.train, [], {}
    kinds = [("responses", train.responses, "error")]
    if train.format != "text":
        kinds.append(("prompts", train.prompts, "warning"))
    for kind, texts, severity in kinds:
        empty = np.flatnonzero(~pd.Series(texts, dtype=object).str.strip().astype(bool).to_numpy())
        data[f"empty_{kind}"] = len(empty)
        if len(empty):
            findings.append(
                Finding(
                    "shape",
                    severity,
                    f"empty-{kind}",
                    f"{len(empty)} records have empty or whitespace-only {kind}: {mention(train.ids[empty])}",
                    list(train.ids[empty]),
                )
            )
    return data, findings


def _labels(ctx: Context) -> tuple[dict, list[Finding]]:
    train = ctx.train
    labelled = train.labelled
    if not labelled.any():
        return {"labels": None}, []
    counts = pd.Series(train.labels[labelled]).value_counts()
    ratio = counts.iloc[0] / counts.iloc[-1]
    data = {
        "labels": {
            "unit": "records",
            "counts": counts.to_dict(),
            "unlabelled": int((~labelled).sum()),
            "imbalance_ratio": float(ratio),
        }
    }
    if ratio <= ctx.cfg.imbalance_ratio:
        return data, []
    rare = counts[counts * ctx.cfg.imbalance_ratio < counts.iloc[0]]
    ids = list(train.ids[np.isin(train.labels, list(rare.index)) & labelled])
    listed = ", ".join(f"'{label}' {n}" for label, n in rare.items())
    return data, [
        Finding(
            "shape",
            "warning",
            "label-imbalance",
            f"labels are imbalanced ({ratio:.0f}× between '{counts.index[0]}' with {counts.iloc[0]} "
            f"records and '{counts.index[-1]}'): rare labels {listed}; their records: {mention(ids)}",
            ids,
        )
    ]


@cache
def _identifier(min_confidence: float):
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True, min_confidence=min_confidence)


def _languages(ctx: Context) -> tuple[dict, list[Finding]]:
    identify = _identifier(ctx.cfg.language_min_confidence).classify
    langs = np.array([identify(text[:LANGUAGE_CHARS])[0] for text in ctx.train.contents], dtype=object)
    detected = langs != "und"
    counts = pd.Series(langs[detected]).value_counts()
    data = {
        "languages": {
            "unit": "records",
            "counts": counts.to_dict(),
            "undetermined": int((~detected).sum()),
            "min_confidence": ctx.cfg.language_min_confidence,
        }
    }
    if len(counts) < 2:
        return data, []
    main = counts.index[0]
    others = np.flatnonzero(detected & (langs != main))
    share = len(others) / detected.sum()
    severity = "warning" if share >= ctx.cfg.language_mix_share else "info"
    mix = ", ".join(f"{lang} {pct(n / detected.sum())}" for lang, n in counts.head(5).items())
    return data, [
        Finding(
            "shape",
            severity,
            "language-mix",
            f"{pct(share)} of the records whose language is clear are not in '{main}' ({mix}): "
            f"{mention(ctx.train.ids[others])}",
            list(ctx.train.ids[others]),
        )
    ]


def run(ctx: Context) -> CheckResult:
    parts = [_lengths, _empty, _labels, _languages]
    if ctx.train.format == "classification":
        parts.append(_input_cut)
    result = CheckResult({})
    for part in parts:
        data, findings = part(ctx)
        result.data.update(data)
        result.findings += findings
    return result
