"""Duplicates and contamination: exact duplicates (normalised text), near duplicates (MinHash LSH over character
shingles, datasketch), conflicting duplicates (same input, different answer or label) and train↔eval overlap
(exact input, word n-grams, MinHash)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from datasketch import MinHash, MinHashLSH
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from sklearn.feature_extraction.text import HashingVectorizer

from .findings import CheckResult, Finding, mention, pct

if TYPE_CHECKING:
    from .context import Context

HASH_SPACE = 2**31 - 1  # HashingVectorizer's largest feature space: collisions are rare enough to ignore
SEPARATOR = "\x1f"


def normalise(texts: list[str]) -> pd.Series:
    """Unicode-normalised, lower-cased, punctuation-free text with single spaces."""
    return (
        pd.Series(texts, dtype=object)
        .str.normalize("NFKC")
        .str.lower()
        .str.replace(r"[^\w\s]+", " ", regex=True)
        .str.split()
        .str.join(" ")
    )


def _groups(keys: pd.Series) -> list[np.ndarray]:
    """Positions of records sharing a key, for every key held by more than one record (largest first)."""
    repeated = keys[keys.duplicated(keep=False)]
    positions = repeated.index.to_numpy()
    groups = [positions[g] for g in repeated.groupby(repeated.to_numpy(), sort=False).indices.values()]
    return sorted(groups, key=len, reverse=True)


def _components(pairs: list[tuple[int, int]], n: int) -> list[np.ndarray]:
    """Groups of records linked by pairs (connected components with more than one member, largest first)."""
    if not pairs:
        return []
    rows, cols = np.array(pairs).T
    _, component = connected_components(coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n)), directed=False)
    return _groups(pd.Series(component)[np.isin(np.arange(n), np.concatenate([rows, cols]))])


def _minhashes(texts: pd.Series, ctx: Context) -> list[MinHash]:
    """One MinHash per text over its character shingles (hashed by scikit-learn, permuted by datasketch)."""
    n = ctx.cfg.shingle
    if texts.empty:
        return []
    shingles = HashingVectorizer(
        analyzer="char",
        ngram_range=(n, n),
        n_features=HASH_SPACE,
        alternate_sign=False,
        norm=None,
        binary=True,
        lowercase=False,
    ).transform(texts)
    rows = np.split(shingles.indices, shingles.indptr[1:-1])
    return MinHash.bulk(rows, num_perm=ctx.cfg.minhash_permutations, seed=ctx.seed, hashfunc=int)


class Index:
    """MinHash LSH over the training texts that have shingles."""

    def __init__(self, texts: pd.Series, positions: np.ndarray, ctx: Context):
        self.threshold = ctx.cfg.near_duplicate_jaccard
        self.minhashes = dict(zip(positions.tolist(), _minhashes(texts.iloc[positions], ctx)))
        self.lsh = MinHashLSH(threshold=self.threshold, num_perm=ctx.cfg.minhash_permutations)
        with self.lsh.insertion_session() as session:
            for position, minhash in self.minhashes.items():
                session.insert(position, minhash, check_duplication=False)

    def matches(self, minhash: MinHash) -> list[int]:
        """Indexed positions whose estimated Jaccard similarity with `minhash` reaches the threshold."""
        return [p for p in self.lsh.query(minhash) if minhash.jaccard(self.minhashes[p]) >= self.threshold]


def _shingled(texts: pd.Series, ctx: Context) -> np.ndarray:
    return np.flatnonzero(texts.str.len().to_numpy() >= ctx.cfg.shingle)


def _group_finding(code: str, severity: str, groups: list[np.ndarray], ids: np.ndarray, what: str) -> Finding:
    members = [ids[g] for g in groups]
    flat = [i for g in members for i in g]
    examples = "; ".join(f"[{mention(g, 3)}]" for g in members[:3])
    return Finding(
        "duplicates", severity, code, f"{len(groups)} groups of {what} ({len(flat)} records), e.g. {examples}", flat
    )


def _within(ctx: Context, index: Index, inputs: pd.Series, answers: pd.Series) -> tuple[dict, list[Finding]]:
    cfg, ids, findings = ctx.cfg, ctx.train.ids, []
    exact = _groups(inputs + SEPARATOR + answers)
    near_pairs = [(p, q) for p, minhash in index.minhashes.items() for q in index.matches(minhash) if q > p]
    near = _components(near_pairs, len(ids))
    posed = inputs != ""
    spread = answers[posed].groupby(inputs[posed]).transform("nunique")
    conflicting = _groups(inputs[posed][spread > 1])
    data = {
        "exact": [list(ids[g]) for g in exact[: cfg.max_ids]],
        "near": [list(ids[g]) for g in near[: cfg.max_ids]],
        "conflicting": [list(ids[g]) for g in conflicting[: cfg.max_ids]],
        "counts": {"exact_groups": len(exact), "near_groups": len(near), "conflicting_groups": len(conflicting)},
        "near_duplicate_jaccard": cfg.near_duplicate_jaccard,
        "shingle": f"{cfg.shingle} characters",
    }
    if exact:
        findings.append(
            _group_finding(
                "exact-duplicates",
                "warning",
                exact,
                ids,
                "exact duplicates (after normalising case, spacing and punctuation)",
            )
        )
    if near:
        findings.append(
            _group_finding(
                "near-duplicates",
                "info",
                near,
                ids,
                f"near duplicates (estimated Jaccard ≥ {cfg.near_duplicate_jaccard} on "
                f"{cfg.shingle}-character shingles)",
            )
        )
    if conflicting:
        findings.append(
            _group_finding(
                "conflicting-duplicates",
                "warning",
                conflicting,
                ids,
                "conflicting duplicates (the same input with different answers or labels)",
            )
        )
    return data, findings


def _ngram_overlap(train: pd.Series, evals: pd.Series, n: int) -> np.ndarray:
    """Per eval text, the share of its word n-grams that also occur in the training texts (NaN: no n-grams)."""
    vectorizer = HashingVectorizer(
        analyzer="word",
        ngram_range=(n, n),
        n_features=HASH_SPACE,
        alternate_sign=False,
        norm=None,
        binary=True,
        lowercase=False,
        token_pattern=r"\S+",
    )
    seen = np.unique(vectorizer.transform(train).indices)
    grams = vectorizer.transform(evals)
    hits = grams.copy()
    hits.data = np.isin(grams.indices, seen).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(hits.sum(axis=1)).ravel() / np.diff(grams.indptr)


def _overlap(ctx: Context, index: Index, content: pd.Series, inputs: pd.Series) -> tuple[dict, list[Finding]]:
    """Eval records whose input occurs in training, or whose text shares n-grams or a MinHash match with it."""
    train, evals, cfg = ctx.train, ctx.eval, ctx.cfg
    first_train = pd.Series(np.arange(len(train))).groupby(inputs.to_numpy()).first().drop("", errors="ignore")
    exact = _inputs(evals.format, normalise(evals.prompts), normalise(evals.responses)).map(first_train).to_numpy()
    eval_content = normalise(evals.contents)
    shares = _ngram_overlap(content, eval_content, cfg.overlap_ngram)
    shingled = _shingled(eval_content, ctx)
    near = {p: index.matches(m) for p, m in zip(shingled.tolist(), _minhashes(eval_content.iloc[shingled], ctx))}
    methods = {
        "exact input": ~np.isnan(exact),
        f"{cfg.overlap_ngram}-gram overlap": shares >= cfg.overlap_share,
        "near duplicate": np.isin(np.arange(len(evals)), [p for p, found in near.items() if found]),
    }
    leaks = []
    for position in np.flatnonzero(np.logical_or.reduce(list(methods.values()))):
        match = exact[position] if not np.isnan(exact[position]) else (near.get(position) or [None])[0]
        leaks.append(
            {
                "eval": evals.ids[position],
                "train": None if match is None else train.ids[int(match)],
                "how": [name for name, hit in methods.items() if hit[position]],
            }
        )
    data = {
        "leaked": len(leaks),
        "eval_records": len(evals),
        "by_method": {name: int(hit.sum()) for name, hit in methods.items()},
        "overlap_ngram": f"{cfg.overlap_ngram} words",
        "overlap_share": cfg.overlap_share,
        "ngram_overlap": _summary(shares),
        "leaks": leaks[: cfg.max_ids],
    }
    if not leaks:
        return data, []
    leaked = [leak["eval"] for leak in leaks]
    examples = "; ".join(f"{leak['eval']} ~ {leak['train'] or '?'}" for leak in leaks[:3])
    return data, [
        Finding(
            "duplicates",
            "error",
            "train-eval-overlap",
            f"{len(leaks)} eval records ({pct(len(leaks) / len(evals))}) overlap the training data "
            f"(exact input, {cfg.overlap_ngram}-word n-grams or MinHash), e.g. {examples}; eval ids: "
            f"{mention(leaked)}",
            leaked,
        )
    ]


def _summary(shares: np.ndarray) -> dict:
    shares = shares[np.isfinite(shares)]
    return {
        "unit": "share of an eval record's n-grams seen in training",
        "checked": int(len(shares)),
        "mean": float(shares.mean()) if len(shares) else None,
    }


def _inputs(fmt: str, prompts: pd.Series, responses: pd.Series) -> pd.Series:
    """What each record is given: its prompt (text records are all input)."""
    return responses if fmt == "text" else prompts


def run(ctx: Context) -> CheckResult:
    train = ctx.train
    content, inputs, answers = normalise(train.contents), normalise(train.prompts), normalise(train.responses)
    distinct = np.flatnonzero(~content.duplicated().to_numpy())  # identical texts are exact or conflicting
    index = Index(content, np.intersect1d(distinct, _shingled(content, ctx)), ctx)
    data, findings = _within(ctx, index, inputs, answers)
    result = CheckResult({"within_train": data}, findings)
    if ctx.eval is not None:
        data, findings = _overlap(ctx, index, content, _inputs(train.format, inputs, answers))
        result.data["train_eval"] = data
        result.findings += findings
    return result
