import json

import pandas as pd
import pytest

from deftune.data import load
from deftune.data.records import load_file
from deftune.errors import DataError
from tests.helpers import write_jsonl

CHAT = {
    "id": "c1",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
    ],
    "meta": {"topic": "greeting"},
    "group": {"gender": "female"},
}
COMPLETION = {"prompt": "2+2=", "completion": "4"}
TEXT = {"text": "Plain text for language modelling."}
CLASSIFICATION = {"id": "x", "text": "The match ended 2-1.", "label": "sport", "annotations": ["sport", "sport", None]}


@pytest.mark.parametrize(
    "row, fmt", [(CHAT, "chat"), (COMPLETION, "completion"), (TEXT, "text"), (CLASSIFICATION, "classification")]
)
def test_each_format_loads_from_jsonl(tmp_path, row, fmt):
    ds = load_file(write_jsonl(tmp_path / "d.jsonl", [row, row | {"id": "second"}]))
    assert ds.format == fmt and len(ds) == 2
    record = ds.records[0]
    assert record.source.endswith("d.jsonl:1")
    if fmt == "chat":
        assert [m["role"] for m in record.messages] == ["system", "user", "assistant"]
        assert record.meta == {"topic": "greeting"} and record.group == {"gender": "female"}
    if fmt == "classification":
        assert record.label == "sport" and record.annotations == ["sport", "sport", None]


def test_csv_parquet_and_saved_hf_dataset_give_the_same_records(tmp_path):
    import datasets

    rows = [
        {"id": str(i), "text": f"article {i}", "label": ["a", "b"][i % 2], "meta": json.dumps({"src": "x"})}
        for i in range(5)
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "d.csv", index=False)
    pd.DataFrame(rows).to_parquet(tmp_path / "d.parquet")
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "hf"))
    loaded = [load_file(tmp_path / name) for name in ("d.csv", "d.parquet", "hf")]
    for ds in loaded:
        assert ds.format == "classification"
        assert [(r.id, r.text, r.label) for r in ds.records] == [(r["id"], r["text"], r["label"]) for r in rows]
    assert loaded[0].records[0].meta == {"src": "x"}  # JSON cells in CSV become structures
    assert loaded[0].records[2].source.endswith("d.csv:4")  # header is line 1
    assert loaded[1].records[2].source.endswith("d.parquet:row 3")


def test_integer_labels_are_class_ids(tmp_path):
    ds = load_file(write_jsonl(tmp_path / "d.jsonl", [{"text": "a", "label": 0}, {"text": "b", "label": 1}]))
    assert ds.labels == ["0", "1"]


def _error(tmp_path, lines, name="bad.jsonl") -> DataError:
    path = write_jsonl(tmp_path / name, lines)
    with pytest.raises(DataError) as info:
        load_file(path)
    return info.value


def test_malformed_json_line_names_file_and_line(tmp_path):
    err = _error(tmp_path, [TEXT, '{"text": "unterminated'])
    assert (err.file.endswith("bad.jsonl"), err.line) == (True, 2)
    assert "malformed JSON" in str(err) and str(err).startswith(f"{err.file}:2:")


def test_missing_field_names_the_field(tmp_path):
    err = _error(tmp_path, [CLASSIFICATION, {"text": "no label here"}])
    assert (err.line, err.field) == (2, "label")
    assert str(err).endswith("bad.jsonl:2:label: missing field 'label' (required for classification records)")


def test_unknown_role(tmp_path):
    bad = {"messages": [{"role": "user", "content": "hi"}, {"role": "bot", "content": "yo"}]}
    err = _error(tmp_path, [CHAT, CHAT | {"id": "c2"}, bad])
    assert (err.line, err.field) == (3, "messages")
    assert "unknown role 'bot'" in str(err) and "[1]" in str(err)


def test_chat_without_assistant_turn(tmp_path):
    err = _error(tmp_path, [{"messages": [{"role": "user", "content": "hi"}]}])
    assert (err.line, err.field) == (1, "messages") and "no assistant message" in str(err)


def test_empty_file(tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(DataError, match="empty"):
        load_file(tmp_path / "empty.jsonl")


@pytest.mark.parametrize("label", [1.5, ["a"], {"x": 1}, True])
def test_wrong_label_type(tmp_path, label):
    err = _error(tmp_path, [CLASSIFICATION, {"text": "t", "label": label}])
    assert (err.line, err.field) == (2, "label") and "label must be a string" in str(err)


def test_wrong_content_type_and_non_object_line(tmp_path):
    err = _error(tmp_path, [{"prompt": "p", "completion": 3}])
    assert (err.line, err.field) == (1, "completion") and "expected a string, got int" in str(err)
    err = _error(tmp_path, [TEXT, "[1, 2]"], name="list.jsonl")
    assert err.line == 2 and "expected a JSON object" in str(err)


def test_duplicate_ids_are_rejected(tmp_path):
    err = _error(tmp_path, [CLASSIFICATION, CLASSIFICATION])
    assert (err.line, err.field) == (2, "id") and "first at" in str(err)


def test_bad_csv_cell_and_unknown_extension(tmp_path):
    (tmp_path / "d.csv").write_text("text,label,meta\nhello,a,{not json}\n")
    with pytest.raises(DataError) as info:
        load_file(tmp_path / "d.csv")
    assert (info.value.line, info.value.field) == (2, "meta")
    (tmp_path / "d.xml").write_text("<x/>")
    with pytest.raises(DataError, match="unknown data file type"):
        load_file(tmp_path / "d.xml")
    with pytest.raises(DataError, match="file not found"):
        load_file(tmp_path / "missing.jsonl")


def test_explicit_format_is_enforced(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [TEXT])
    with pytest.raises(DataError, match="missing field 'label'"):
        load_file(path, "classification")


def test_unknown_embedded_dataset():
    with pytest.raises(DataError, match="unknown embedded dataset"):
        load("embedded:nope")
