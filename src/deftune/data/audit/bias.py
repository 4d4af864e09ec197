"""Bias presence: how groups are represented — from records' ``group`` field, else detected with a lexicon of
group terms (gender, religion, nationality/ethnicity, age; configurable) — overall and per label, groups below a
representation threshold, and label-rate parity across groups (fairlearn's statistical parity difference and
ratio, one label against the rest)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame, selection_rate
from scipy.sparse import csr_matrix
from sklearn.feature_extraction.text import CountVectorizer

from .findings import CheckResult, Finding, mention, pct

if TYPE_CHECKING:
    from .context import Context

LEXICON: dict[str, dict[str, list[str]]] = {
    "gender": {
        "female": [
            "she",
            "her",
            "hers",
            "herself",
            "woman",
            "women",
            "girl",
            "girls",
            "mother",
            "mothers",
            "daughter",
            "daughters",
            "wife",
            "wives",
            "sister",
            "sisters",
            "aunt",
            "niece",
            "mrs",
            "ms",
            "lady",
            "ladies",
            "female",
            "females",
            "queen",
            "actress",
            "grandmother",
            "girlfriend",
        ],
        "male": [
            "he",
            "him",
            "his",
            "himself",
            "man",
            "men",
            "boy",
            "boys",
            "father",
            "fathers",
            "son",
            "sons",
            "husband",
            "husbands",
            "brother",
            "brothers",
            "uncle",
            "nephew",
            "mr",
            "gentleman",
            "gentlemen",
            "male",
            "males",
            "king",
            "actor",
            "grandfather",
            "boyfriend",
        ],
    },
    "religion": {
        "christian": [
            "christian",
            "christians",
            "christianity",
            "church",
            "churches",
            "catholic",
            "catholics",
            "protestant",
            "protestants",
        ],
        "muslim": ["muslim", "muslims", "islam", "islamic", "mosque", "mosques"],
        "jewish": ["jewish", "jew", "jews", "judaism", "synagogue"],
        "hindu": ["hindu", "hindus", "hinduism"],
        "buddhist": ["buddhist", "buddhists", "buddhism"],
        "sikh": ["sikh", "sikhs", "sikhism"],
        "atheist": ["atheist", "atheists", "atheism"],
    },
    "nationality_ethnicity": {
        "american": ["american", "americans"],
        "british": ["british", "briton", "britons"],
        "chinese": ["chinese"],
        "indian": ["indian", "indians"],
        "japanese": ["japanese"],
        "russian": ["russian", "russians"],
        "french": ["french"],
        "german": ["german", "germans"],
        "african": ["african", "africans"],
        "arab": ["arab", "arabs", "arabic"],
        "hispanic": ["hispanic", "hispanics", "latino", "latinos", "latina", "latinas"],
        "mexican": ["mexican", "mexicans"],
        "asian": ["asian", "asians"],
        "black": ["black people", "black man", "black woman", "black men", "black women"],
        "white": ["white people", "white man", "white woman", "white men", "white women"],
    },
    "age": {
        "young": [
            "young",
            "youth",
            "youths",
            "teenager",
            "teenagers",
            "teen",
            "teens",
            "child",
            "children",
            "kid",
            "kids",
            "adolescent",
            "adolescents",
        ],
        "old": [
            "elderly",
            "pensioner",
            "pensioners",
            "retiree",
            "retirees",
            "senior citizens",
            "older people",
            "old people",
            "old man",
            "old woman",
        ],
    },
}


def lexicon(overrides: dict[str, dict[str, list[str]]] | None) -> dict[str, dict[str, list[str]]]:
    """The built-in lexicon with the attributes named in `overrides` replaced."""
    return {**LEXICON, **(overrides or {})}


def detect(texts: list[str], terms: dict[str, dict[str, list[str]]]) -> dict[str, pd.DataFrame]:
    """Per attribute, a records × groups boolean frame: which groups' terms each text mentions."""
    columns = [(attribute, group) for attribute, groups in terms.items() for group in groups]
    vocabulary = sorted({t.lower() for groups in terms.values() for words in groups.values() for t in words})
    where = {t: i for i, t in enumerate(vocabulary)}
    rows = [where[t.lower()] for attribute, group in columns for t in terms[attribute][group]]
    cols = [c for c, (attribute, group) in enumerate(columns) for _ in terms[attribute][group]]
    to_group = csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(vocabulary), len(columns)))
    longest = max(len(t.split()) for t in vocabulary)
    found = CountVectorizer(
        vocabulary=vocabulary, ngram_range=(1, longest), token_pattern=r"(?u)\b\w+\b", binary=True
    ).transform(texts)
    hits = pd.DataFrame(((found @ to_group) > 0).toarray(), columns=pd.MultiIndex.from_tuples(columns))
    return {attribute: hits[attribute] for attribute in terms}


def _membership(ctx: Context) -> tuple[dict[str, pd.DataFrame], str]:
    records = ctx.train.records
    if any(r.group for r in records):
        attributes = sorted({a for r in records for a in (r.group or {})})
        values = {a: pd.Series([(r.group or {}).get(a) for r in records], dtype=object) for a in attributes}
        return {a: pd.get_dummies(v).astype(bool) for a, v in values.items()}, "the records' group field"
    return detect(ctx.train.contents, lexicon(ctx.cfg.lexicon)), "group terms found in the text (lexicon)"


def _representation(attribute: str, hits: pd.DataFrame, ctx: Context) -> tuple[dict, list[Finding]]:
    counts = hits.sum()
    mentioned = int(hits.any(axis=1).sum())
    present = counts[counts > 0]
    labels = ctx.train.labels
    data = {
        "records": mentioned,
        "share_of_all": mentioned / len(hits),
        "groups": {g: {"records": int(n), "share": n / mentioned if mentioned else None} for g, n in counts.items()},
        "absent": list(counts.index[counts == 0]),
    }
    if ctx.train.labelled.any():
        data["per_label"] = {g: pd.Series(labels[hits[g].to_numpy()]).value_counts().to_dict() for g in present.index}
    if len(present) < 2:
        return data, []
    floor = ctx.cfg.min_group_ratio / len(present)
    findings = []
    for group, n in present[present < floor * mentioned].items():
        ids = list(ctx.train.ids[hits[group].to_numpy()])
        findings.append(
            Finding(
                "bias",
                "warning",
                "under-represented",
                f"{attribute} group '{group}' is under-represented: {n} of {mentioned} records that mention {attribute} "
                f"({pct(n / mentioned)}; an equal share would be {pct(1 / len(present))}): {mention(ids)}",
                ids,
            )
        )
    return data, findings


def _parity(attribute: str, hits: pd.DataFrame, ctx: Context) -> tuple[dict, list[Finding]]:
    """Label rates across groups, over records that mention exactly one group of the attribute."""
    cfg, train = ctx.cfg, ctx.train
    single = (hits.sum(axis=1) == 1).to_numpy() & train.labelled
    group = hits[single].idxmax(axis=1)
    sizes = group.value_counts()
    kept = group[group.map(sizes) >= cfg.min_group_records]
    if kept.nunique() < 2:
        return {}, []
    positions = kept.index.to_numpy()
    labels = train.labels[positions]
    data, findings = {}, []
    for label in sorted(set(labels)):
        chosen = (labels == label).astype(int)
        frame = MetricFrame(metrics=selection_rate, y_true=chosen, y_pred=chosen, sensitive_features=kept.to_numpy())
        rates = frame.by_group
        data[label] = {"rates": rates.to_dict(), "difference": frame.difference(), "ratio": frame.ratio()}
        if frame.difference() > cfg.parity_difference:
            low, high = rates.idxmin(), rates.idxmax()
            ids = list(train.ids[positions[kept.to_numpy() == low]])
            findings.append(
                Finding(
                    "bias",
                    "warning",
                    "label-parity",
                    f"label '{label}' goes to {pct(rates[high])} of records mentioning {attribute} group '{high}' but "
                    f"{pct(rates[low])} of those mentioning '{low}' (statistical parity difference "
                    f"{frame.difference():.2f}, ratio {frame.ratio():.2f}); '{low}' records: {mention(ids)}",
                    ids,
                )
            )
    return {
        "labels": data,
        "records": len(kept),
        "note": f"groups with at least {cfg.min_group_records} records that mention one group only",
    }, findings


def run(ctx: Context) -> CheckResult:
    membership, source = _membership(ctx)
    result = CheckResult({"source": source, "attributes": {}})
    for attribute, hits in membership.items():
        data, findings = _representation(attribute, hits, ctx)
        if ctx.train.labelled.any():
            data["parity"], parity_findings = _parity(attribute, hits, ctx)
            findings += parity_findings
        result.data["attributes"][attribute] = data
        result.findings += findings
    return result
