"""Seconds `deftune audit` takes (without the cleanlab classifier) on 10k, 30k and 100k synthetic short
classification records, printed as one JSON object. Records are news-like: two or three sentences of topic words
and common words, some with group terms, about 1% duplicated. Run: .venv/bin/python bench/audit_scaling.py"""

from __future__ import annotations

import json
import os
import random
import time

from deftune.config import load
from deftune.data import renderer_for
from deftune.data.audit import audit
from deftune.data.records import Dataset, Record
from deftune.testing import embedded_tokenizer

SIZES = (10_000, 30_000, 100_000)
TOPICS = {
    "business": "market shares profit bank investors economy growth company sales prices deal firm quarter".split(),
    "sport": "match team goal season coach players league cup striker win final championship fans".split(),
    "politics": "government minister election party vote policy parliament campaign leader reform tax law".split(),
    "tech": "software phone users chip internet network data computer device startup browser security".split(),
    "entertainment": "film music album actor award band show festival star director singer series".split(),
}
VERBS = "said reported expected announced warned raised cut signed launched won lost praised faced".split()
ADJECTIVES = "new big early strong weak local major final recent key global record small late".split()
OPENERS = ["The", "A", "This year the", "On Monday the", "Last week a", "Officials said the"]
PEOPLE = ["He said", "She said", "The spokesman said", "The chairwoman said", "His adviser said", "Her team said"]


def sentence(rng: random.Random, words: list[str]) -> str:
    return (
        f"{rng.choice(OPENERS)} {rng.choice(ADJECTIVES)} {rng.choice(words)} {rng.choice(VERBS)} "
        f"{rng.randint(2, 98)} {rng.choice(words)} {rng.choice(['after', 'before', 'despite', 'with'])} the "
        f"{rng.choice(ADJECTIVES)} {rng.choice(words)}."
    )


def records(n: int, seed: int = 0) -> list[Record]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        if out and rng.random() < 0.01:
            copy = rng.choice(out)
            out.append(Record(id=f"r{i}", format="classification", text=copy.text, label=copy.label))
            continue
        label = rng.choice(list(TOPICS))
        text = " ".join(sentence(rng, TOPICS[label]) for _ in range(rng.randint(2, 3)))
        if rng.random() < 0.3:
            text += f" {rng.choice(PEOPLE)} it was {rng.choice(ADJECTIVES)}."
        out.append(Record(id=f"r{i}", format="classification", text=text, label=label))
    return out


def timed(n: int, cfg, tokenizer) -> tuple[float, dict[str, float]]:
    """Wall seconds of one audit of n records, and the seconds of each check."""
    dataset = Dataset(records(n), "classification", f"synthetic-{n}")
    renderer = renderer_for(tokenizer, cfg.data, dataset)
    start = time.perf_counter()
    result = audit(dataset, tokenizer=tokenizer, renderer=renderer, cfg=cfg.data.audit, seed=cfg.run.seed)
    return round(time.perf_counter() - start, 1), {name: round(s, 1) for name, s in result.seconds.items()}


def main() -> None:
    cfg = load(None, ["data.audit.cleanlab=false"])
    tokenizer = embedded_tokenizer()
    timed(200, cfg, tokenizer)  # pays the one-time imports and dictionary loads
    seconds, per_check = {}, {}
    for n in SIZES:
        seconds[str(n)], per_check[str(n)] = timed(n, cfg, tokenizer)
    print(
        json.dumps(
            {
                "seconds": seconds,
                "per_check": per_check,
                "cleanlab": False,
                "cpu_cores": os.cpu_count(),
                "unit": "seconds of audit() wall time, tokenizer already loaded",
            }
        )
    )


if __name__ == "__main__":
    main()
