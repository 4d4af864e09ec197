from collections import Counter

import pytest

from deftune.config import DataConfig
from deftune.data import load, load_splits


def test_bbc_news_is_complete():
    ds = load("embedded:bbc-news")
    assert len(ds) == 2225 and ds.format == "classification"
    assert Counter(r.label for r in ds.records) == {
        "sports": 511,
        "business": 510,
        "politics": 417,
        "tech": 401,
        "entertainment": 386,
    }
    record = next(r for r in ds.records if r.id == "business-001")
    title, first = record.text.split("\n")
    assert title == "Ad sales boost Time Warner profit"
    assert first.startswith("Quarterly profits at US media giant TimeWarner jumped 76%")
    assert len({r.id for r in ds.records}) == 2225


def test_split_is_seeded_stratified_and_disjoint():
    cfg = DataConfig()
    a, b = load_splits(cfg, seed=7), load_splits(cfg, seed=7)
    assert [[r.id for r in a[k].records] for k in a] == [[r.id for r in b[k].records] for k in b]
    ids = {k: {r.id for r in ds.records} for k, ds in a.items()}
    assert not (ids["train"] & ids["test"]) and not (ids["train"] & ids["validation"])
    assert not (ids["validation"] & ids["test"])
    assert sum(map(len, ids.values())) == 2225
    sizes = [511, 510, 417, 401, 386]  # per label: each split takes its rounded share
    assert len(ids["test"]) == sum(round(n * 0.2) for n in sizes) == 444
    assert len(ids["validation"]) == sum(round(n * 0.1) for n in sizes) == 223
    test_share = Counter(r.label for r in a["test"].records)
    assert test_share["sports"] == round(511 * 0.2) and test_share["entertainment"] == round(386 * 0.2)
    other = load_splits(cfg, seed=8)
    assert {r.id for r in other["test"].records} != ids["test"]


def test_training_subset_is_seeded():
    cfg = DataConfig(max_train_examples=50, max_validation_examples=10)
    a, b = load_splits(cfg, seed=1), load_splits(cfg, seed=1)
    assert len(a["train"]) == 50 and len(a["validation"]) == 10
    assert [r.id for r in a["train"].records] == [r.id for r in b["train"].records]


def test_hold_out_moves_one_topic_to_the_test_split(tmp_path):
    from deftune.data import held_out_ids
    from deftune.errors import DataError
    from tests.helpers import TOPICS, write_jsonl

    rows = [
        {"id": f"{label}-{i}", "text": text, "label": label, "meta": {"source": "wire" if i < 2 else "web"}}
        for label, texts in TOPICS.items()
        for i, text in enumerate(texts)
    ]
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    cfg = DataConfig(path=str(path), split={"validation": 0.25, "test": 0.25, "hold_out": "source=wire"})
    parts = load_splits(cfg, seed=0)
    wire = {r["id"] for r in rows if r["meta"]["source"] == "wire"}
    assert held_out_ids(cfg, seed=0) == wire
    assert wire <= {r.id for r in parts["test"].records}
    assert not wire & {r.id for name in ("train", "validation") for r in parts[name].records}
    assert sum(len(p) for p in parts.values()) == len(rows)

    topic = DataConfig(path="embedded:bbc-news", split={"hold_out": "topic=0"})
    held = held_out_ids(topic, seed=0)
    bbc = load_splits(topic, seed=0)
    assert 0 < len(held) < 2225 and held <= {r.id for r in bbc["test"].records}
    assert not held & {r.id for r in bbc["train"].records}

    for bad, message in (("source=radio", "no record has source=radio"), ("topic=99", "topics are 0 to 7")):
        with pytest.raises(DataError, match=message):
            load_splits(
                DataConfig(
                    path=str(path) if bad.startswith("source") else "embedded:bbc-news", split={"hold_out": bad}
                ),
                seed=0,
            )
