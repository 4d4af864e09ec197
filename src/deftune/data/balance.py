"""Balanced training data for one protected attribute (default gender):

- reweighting (Kamiran & Calders 2012): each record of group g and label y gets P(g)P(y)/P(g,y), so that group and
  label are independent in the weighted data;
- stratified resampling: each (group, label) cell is sampled (with replacement where it grows) to the size it
  would have were group and label independent, n_g * n_y / n;
- counterfactual augmentation: a copy of each record with group terms swapped (he <-> she, names, ...; extra pairs
  from the config), the label kept.

A record's group is its ``group`` field, else the one group of the attribute that the audit's lexicon finds in its
text; records with no group, or several, keep weight 1 and are never resampled."""

from __future__ import annotations

import logging
import random
import re
from collections import Counter
from dataclasses import replace
from pathlib import Path

from ..config import BalanceConfig, Config
from ..core.files import write_json
from .audit.bias import detect, lexicon
from .records import Dataset, Record

log = logging.getLogger(__name__)

SWAPS = {  # one direction; applied both ways ("her" is resolved by the word after it)
    "he": "she",
    "him": "her",
    "his": "her",
    "himself": "herself",
    "man": "woman",
    "men": "women",
    "boy": "girl",
    "boys": "girls",
    "father": "mother",
    "fathers": "mothers",
    "son": "daughter",
    "sons": "daughters",
    "husband": "wife",
    "husbands": "wives",
    "brother": "sister",
    "brothers": "sisters",
    "uncle": "aunt",
    "nephew": "niece",
    "mr": "mrs",
    "king": "queen",
    "actor": "actress",
    "gentleman": "lady",
    "gentlemen": "ladies",
    "male": "female",
    "males": "females",
    "grandfather": "grandmother",
    "boyfriend": "girlfriend",
    "john": "mary",
    "james": "linda",
    "michael": "susan",
    "david": "sarah",
    "robert": "jennifer",
    "william": "elizabeth",
    "thomas": "emma",
    "daniel": "olivia",
}
# "her" before these (or at the end of a clause) is an object pronoun: him; elsewhere a possessive: his
OBJECT_FOLLOWERS = {
    "and",
    "or",
    "but",
    "to",
    "that",
    "the",
    "a",
    "an",
    "in",
    "on",
    "at",
    "for",
    "with",
    "from",
    "by",
    "of",
    "as",
    "about",
    "again",
    "too",
    "so",
    "if",
    "when",
    "because",
    "into",
    "up",
    "down",
    "out",
    "off",
    "over",
    "back",
    "away",
    "this",
    "what",
}
WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?|[^A-Za-z]+")


def groups_of(records: list[Record], attribute: str, terms=None) -> list[str | None]:
    """Each record's group for `attribute`: its group field, else the single lexicon group its text mentions."""
    texts = [_texts(r) for r in records]
    found = detect([" ".join(t) for t in texts], lexicon(terms))[attribute] if attribute in lexicon(terms) else None
    out = []
    for i, r in enumerate(records):
        if r.group and attribute in r.group:
            out.append(r.group[attribute])
        elif found is not None and found.iloc[i].sum() == 1:
            out.append(str(found.columns[found.iloc[i].to_numpy()][0]))
        else:
            out.append(None)
    return out


def reweight(groups: list[str | None], labels: list[str | None]) -> list[float]:
    """P(g)P(y)/P(g,y) per record, with probabilities over records that have both a group and a label; 1.0
    for the others."""
    known = [(g, y) for g, y in zip(groups, labels) if g is not None and y is not None]
    n = len(known)
    by_group, by_label, by_cell = Counter(g for g, _ in known), Counter(y for _, y in known), Counter(known)
    return [
        by_group[g] * by_label[y] / (n * by_cell[(g, y)]) if g is not None and y is not None else 1.0
        for g, y in zip(groups, labels)
    ]


def resample(records: list[Record], groups: list[str | None], seed: int) -> list[Record]:
    """Stratified resampling by (group, label): every cell sampled to round(n_g * n_y / n); duplicates get
    ids ``<id>#<k>``. Records without a group or label are kept as they are."""
    rng = random.Random(seed)
    cells: dict[tuple, list[Record]] = {}
    kept = []
    for record, group in zip(records, groups):
        if group is None or record.label is None:
            kept.append(record)
        else:
            cells.setdefault((group, record.label), []).append(record)
    n = sum(len(c) for c in cells.values())
    by_group, by_label = Counter(), Counter()
    for (g, y), members in cells.items():
        by_group[g] += len(members)
        by_label[y] += len(members)
    for (g, y), members in sorted(cells.items()):
        size = round(by_group[g] * by_label[y] / n)
        if size <= len(members):
            kept += rng.sample(members, size)
        else:
            extra = [rng.choice(members) for _ in range(size - len(members))]
            kept += members + [replace(r, id=f"{r.id}#{k}") for k, r in enumerate(extra, start=1)]
    return kept


def swap_table(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Both directions of the built-in pairs plus `extra`; ``her`` maps to ``his`` (resolved in context)."""
    pairs = {**SWAPS, **{k.lower(): v.lower() for k, v in (extra or {}).items()}}
    table = {b: a for a, b in pairs.items()} | pairs
    table["her"] = "his"
    return table


def _cased(word: str, like: str) -> str:
    if like.isupper() and len(like) > 1:
        return word.upper()
    return word[:1].upper() + word[1:] if like[:1].isupper() else word


def swap(text: str, table: dict[str, str]) -> str:
    """The text with every word in `table` replaced by its counterpart, keeping capitalisation."""
    tokens = WORD.findall(text)
    out = []
    for i, token in enumerate(tokens):
        target = table.get(token.lower())
        if target is None:
            out.append(token)
            continue
        if token.lower() == "her" and "his" in table:
            following = next((t.lower() for t in tokens[i + 1 :] if t.strip()), "")
            target = "him" if not following[:1].isalpha() or following in OBJECT_FOLLOWERS else "his"
        out.append(_cased(target, token))
    return "".join(out)


def _texts(record: Record) -> list[str]:
    if record.format == "chat":
        return [m["content"] for m in record.messages]
    return [record.prompt, record.completion] if record.format == "completion" else [record.text]


def counterfactual(record: Record, table: dict[str, str]) -> Record | None:
    """A copy with group terms swapped in every text field, the label kept (None when nothing was swapped)."""
    changes: dict = {
        "id": f"{record.id}#counterfactual",
        "source": "",
        "annotations": None,
        "meta": {**record.meta, "counterfactual_of": record.id},
    }
    if record.format == "chat":
        changes["messages"] = [dict(m, content=swap(m["content"], table)) for m in record.messages]
    elif record.format == "completion":
        changes.update(prompt=swap(record.prompt, table), completion=swap(record.completion, table))
    else:
        changes["text"] = swap(record.text, table)
    copy = replace(record, **changes)
    return None if _texts(copy) == _texts(record) else copy


def augment(records: list[Record], table: dict[str, str]) -> list[Record]:
    """The records followed by a counterfactual copy of each record that mentions a swappable term."""
    return records + [c for c in (counterfactual(r, table) for r in records) if c is not None]


def cell_counts(groups: list[str | None], labels: list[str | None], weights: list[float] | None = None) -> dict:
    """(group, label) -> count (or summed weight), for reporting how balanced a set is."""
    counts: Counter = Counter()
    for i, (g, y) in enumerate(zip(groups, labels)):
        if g is not None and y is not None:
            counts[f"{g}|{y}"] += weights[i] if weights else 1
    return dict(sorted(counts.items()))


def balance(records: list[Record], cfg: BalanceConfig, attribute: str, seed: int) -> tuple[list[Record], dict]:
    """The records balanced as configured (`data.balance.counterfactual` first, then `data.balance.strategy`), and a report
    of the (group, label) cells before and after. Reweighting stores each weight under ``meta.weight``."""
    if cfg.counterfactual:
        records = augment(records, swap_table(cfg.swap_lexicon))
    groups = groups_of(records, attribute)
    labels = [r.label for r in records]
    report = {
        "attribute": attribute,
        "method": cfg.strategy,
        "counterfactual": cfg.counterfactual,
        "records": len(records),
        "with_group": sum(g is not None for g in groups),
        "cells_before": cell_counts(groups, labels),
    }
    if cfg.strategy == "reweight":
        weights = reweight(groups, labels)
        records = [replace(r, meta={**r.meta, "weight": w}) for r, w in zip(records, weights)]
        report["cells_after"] = cell_counts(groups, labels, weights)
    elif cfg.strategy == "resample":
        records = resample(records, groups, seed)
        report["cells_after"] = cell_counts(groups_of(records, attribute), [r.label for r in records])
    report["records_after"] = len(records)
    return records, report


def for_training(parts: dict[str, Dataset], config: Config, run_dir: str | Path) -> dict[str, Dataset]:
    """Training's data transform after the split (and augmentation): the train part balanced as `data.balance`
    says, with the report written to <run_dir>/data/balance.json. Reweighted records carry
    meta.weight, which the trainer's loss reads."""
    train = parts["train"]
    records, report = balance(train.records, config.data.balance, config.data.group_attribute, config.run.seed)
    write_json(Path(run_dir) / "data" / "balance.json", report)
    log.info(
        "balance (%s, counterfactual %s): %d -> %d training records, %d with a %s group",
        config.data.balance.strategy,
        config.data.balance.counterfactual,
        len(train),
        len(records),
        report["with_group"],
        config.data.group_attribute,
    )
    return {**parts, "train": Dataset(records, train.format, f"{train.source}+balanced")}
