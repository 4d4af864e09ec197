import json
from collections import Counter

import pytest

from deftune.config import BalanceConfig
from deftune.data.balance import (
    augment,
    balance,
    counterfactual,
    groups_of,
    resample,
    reweight,
    swap,
    swap_table,
)
from deftune.data.records import Record
from tests.helpers import write_jsonl


def rec(i, text, label, group=None):
    return Record(id=str(i), format="classification", text=text, label=label, group=group)


def test_reweighting_matches_hand_computed_weights():
    # n=4: P(m)=3/4, P(f)=1/4, P(a)=P(b)=1/2; P(m,a)=1/2, P(m,b)=1/4, P(f,b)=1/4
    weights = reweight(["m", "m", "m", "f", None], ["a", "a", "b", "b", "a"])
    assert weights == pytest.approx([0.75, 0.75, 1.5, 0.5, 1.0])


def test_reweighted_cells_are_independent_when_every_cell_is_populated():
    groups = ["m"] * 6 + ["f"] * 4
    labels = ["a"] * 5 + ["b"] + ["a"] + ["b"] * 3
    w = reweight(groups, labels)
    total = sum(w)
    for g in "mf":
        for y in "ab":
            joint = sum(wi for wi, gi, yi in zip(w, groups, labels) if gi == g and yi == y) / total
            p_g = sum(wi for wi, gi in zip(w, groups) if gi == g) / total
            p_y = sum(wi for wi, yi in zip(w, labels) if yi == y) / total
            assert joint == pytest.approx(p_g * p_y)


def test_stratified_resampling_sizes_cells_to_independence():
    records = [
        rec(i, "t", y, {"gender": g})
        for i, (g, y) in enumerate(
            [("m", "a")] * 6 + [("m", "b")] * 2 + [("f", "a")] * 2 + [("f", "b")] * 2 + [(None, "a")]
        )
    ]
    records[-1].group = None
    groups = groups_of(records, "gender")
    out = resample(records, groups, seed=0)
    cells = Counter(((r.group or {}).get("gender"), r.label) for r in out)
    # n=12, n_m=8, n_f=4, n_a=8, n_b=4: m|a 16/3->5, m|b 8/3->3, f|a 8/3->3, f|b 4/3->1; the ungrouped record kept
    assert cells == {("m", "a"): 5, ("m", "b"): 3, ("f", "a"): 3, ("f", "b"): 1, (None, "a"): 1}
    assert len({r.id for r in out}) == len(out)


def test_groups_come_from_the_field_else_the_lexicon():
    records = [
        rec(0, "text", "a", {"gender": "x"}),
        rec(1, "She said so", "a"),
        rec(2, "He and she", "a"),
        rec(3, "Nothing here", "a"),
    ]
    assert groups_of(records, "gender") == ["x", "female", None, None]


@pytest.mark.parametrize(
    "text, swapped",
    [
        ("He gave her the book.", "She gave him the book."),
        ("She walked her dog.", "He walked his dog."),
        ("I saw her.", "I saw him."),
        ("HIS wife and Mr Smith", "HER husband and Mrs Smith"),
        ("John met his brother", "Mary met her sister"),
        ("nothing to swap", "nothing to swap"),
        ("the sheep and the shepherd", "the sheep and the shepherd"),
    ],
)
def test_swaps_keep_case_and_resolve_her(text, swapped):
    assert swap(text, swap_table()) == swapped


def test_configured_pairs_swap_both_ways():
    table = swap_table({"French": "German"})
    assert swap("A French chef and a German cook", table) == "A German chef and a French cook"


def test_counterfactual_keeps_label_and_marks_provenance():
    record = rec(7, "She is a great engineer", "tech")
    copy = counterfactual(record, swap_table())
    assert copy.text == "He is a great engineer" and copy.label == "tech"
    assert copy.id == "7#counterfactual" and copy.meta["counterfactual_of"] == "7"
    assert counterfactual(rec(8, "a neutral text", "tech"), swap_table()) is None
    chat = Record(
        id="c",
        format="chat",
        messages=[{"role": "user", "content": "Is he right?"}, {"role": "assistant", "content": "He is."}],
    )
    assert [m["content"] for m in counterfactual(chat, swap_table()).messages] == ["Is she right?", "She is."]
    assert len(augment([record, rec(8, "neutral", "x")], swap_table())) == 3


def test_balance_command_writes_weights(tmp_path):
    from typer.testing import CliRunner

    from deftune.cli import app

    rows = [
        {"id": str(i), "text": t, "label": y}
        for i, (t, y) in enumerate(
            [
                ("she codes", "tech"),
                ("she runs", "sport"),
                ("he codes", "tech"),
                ("he codes too", "tech"),
                ("he runs", "sport"),
                ("plain", "sport"),
            ]
        )
    ]
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(
        app,
        ["balance", str(data), "data.balance.strategy=reweight", "data.balance.counterfactual=true", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(written) == 11  # 6 records + 5 counterfactual copies
    # the swapped copies make each gender 3 tech + 2 sport: group and label independent, every weight 1
    assert [r["meta"]["weight"] for r in written] == pytest.approx([1.0] * 11)
    _, report = balance(
        [rec(r["id"], r["text"], r["label"]) for r in rows], BalanceConfig(strategy="reweight"), "gender", seed=0
    )
    assert report["cells_before"] == {"female|sport": 1, "female|tech": 1, "male|sport": 1, "male|tech": 2}
    assert sum(report["cells_after"].values()) == pytest.approx(5)


def _skewed(tmp_path, weight=None):
    """Gender and label correlated: women write 3 sport + 1 tech, men 1 sport + 3 tech."""
    rows = [
        {"id": f"{g}-{i}", "text": f"{p} wrote item {i}", "label": "sport" if (i < 3) == (g == "f") else "tech"}
        for g, p in (("f", "She"), ("m", "He"))
        for i in range(4)
    ]
    if weight is not None:
        rows[0]["meta"] = {"weight": weight}
    return write_jsonl(tmp_path / "skewed.jsonl", rows)


def _base(tiny_model, tmp_path, data):
    return [
        f"model.spec={tiny_model}",
        f"data.path={data}",
        f"run.root={tmp_path}",
        "run.name=b",
        "training.max_steps=2",
        "training.batch_size=8",
        "training.batching=fixed",
        "data.split.test=0",
        "data.split.validation=0",
    ]


def test_training_reweights_the_loss_by_group_and_label(tiny_model, tmp_path, monkeypatch):
    from deftune import config
    from deftune.train import engine, recipe

    seen = []
    real = engine.trained_position_loss

    def spy(model, inputs, num_items):
        seen.extend(inputs["loss_weights"][:, -1].tolist())
        return real(model, inputs, num_items)

    monkeypatch.setattr(engine, "trained_position_loss", spy)
    cfg = config.load(None, _base(tiny_model, tmp_path, _skewed(tmp_path)) + ["data.balance.strategy=reweight"])
    recipe.train(cfg, quiet=True)
    # P(g)P(y)/P(g,y): 0.5*0.5/(3/8) for the common cells, 0.5*0.5/(1/8) for the rare ones
    assert sorted(seen[:8]) == pytest.approx([2 / 3] * 6 + [2.0] * 2)
    report = json.loads((tmp_path / "b" / "data" / "balance.json").read_text())
    assert report["cells_before"] == {"female|sport": 3, "female|tech": 1, "male|sport": 1, "male|tech": 3}
    assert report["cells_after"] == pytest.approx(
        {"female|sport": 2, "female|tech": 2, "male|sport": 2, "male|tech": 2}
    )


@pytest.mark.parametrize("weight", [-1, "heavy", True])
def test_a_bad_meta_weight_names_its_record(tiny_model, tmp_path, weight):
    from deftune import config
    from deftune.errors import DataError
    from deftune.train import recipe

    cfg = config.load(None, _base(tiny_model, tmp_path, _skewed(tmp_path, weight)))
    with pytest.raises(DataError, match=r"skewed.jsonl:1:meta.weight: expected a finite number >= 0"):
        recipe.train(cfg, quiet=True)
