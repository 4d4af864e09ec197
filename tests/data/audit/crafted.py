"""Crafted datasets whose audit findings are known in advance."""

import itertools
import random

from deftune.data.records import Dataset, Record

NAMES = ["Silva", "Okafor", "Jensen", "Moreau", "Tanaka", "Kowalski", "Haddad", "Brennan"]
NUMBERS = [str(n) for n in range(12, 96, 7)]
PARTS = {
    "sport": (
        ["The striker", "The goalkeeper", "The coach", "The captain", "The defender", "The winger"],
        NAMES,
        [
            "scored twice in",
            "was sent off during",
            "celebrated after",
            "criticised the referee after",
            "missed a penalty in",
        ],
        ["the cup final", "the derby", "the league match", "the semi-final", "the friendly"],
        ["in minute"],
        NUMBERS,
        ["on Saturday.", "last night.", "before a full stadium.", "despite the rain.", "at home."],
    ),
    "tech": (
        ["The startup", "The chip maker", "The lab", "The software company", "The university", "The phone maker"],
        ["released", "announced", "tested", "patched", "unveiled"],
        [
            "a faster processor",
            "a new browser",
            "a cheaper battery",
            "an open source compiler",
            "a larger language model",
        ],
        ["called"],
        NAMES,
        ["costing"],
        NUMBERS,
        [
            "dollars this week.",
            "dollars for developers.",
            "dollars after delays.",
            "dollars to strong reviews.",
            "dollars at a conference.",
        ],
    ),
}


def sentences(topic: str, n: int, start: int = 0) -> list[str]:
    """Texts `start` to `start + n` about one topic, two sentences each; no sentence occurs in two texts."""
    pool = [" ".join(words) for words in itertools.product(*PARTS[topic])]
    random.Random(topic).shuffle(pool)
    return [f"{pool[2 * i]} {pool[2 * i + 1]}" for i in range(start, start + n)]


def classification(texts_by_label: dict[str, list[str]], prefix: str = "", **extra) -> list[Record]:
    return [
        Record(id=f"{prefix}{label}-{i}", format="classification", text=text, label=label, **extra)
        for label, texts in texts_by_label.items()
        for i, text in enumerate(texts)
    ]


def dataset(records: list[Record]) -> Dataset:
    return Dataset(records, records[0].format, "crafted")


def codes(result, check=None) -> dict[str, list]:
    """Findings by code (of one check, if given): code -> the finding's ids."""
    return {f.code: f.ids for f in result.findings if check is None or f.check == check}
