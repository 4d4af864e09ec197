"""Hostile data files through the real `deftune` entry point: each gives exit 2, one line naming file:line:field
with what was expected, no traceback, and nothing written; the odd but valid ones (BOM, CRLF, blank lines) load."""

import os
import sys

import pandas as pd
import pytest

from deftune import config, data
from deftune.core.files import MAX_LINE
from deftune.errors import DataError

ROW = b'{"text": "a", "label": "x"}\n'  # 28 bytes
TOO_LONG = "the line is over 32 MiB (a single record that large is not a training example; is this a {} file?)"


@pytest.fixture
def deftune(tmp_path, monkeypatch, capsys):
    """`deftune ARGS` run in tmp_path through `deftune.cli:main` in this process (a subprocess pays seconds of
    imports per call); checks it failed as a user error (exit 2, one line on stderr, no traceback) that wrote
    nothing, and returns that line without its "error: " and with tmp_path left out of paths."""
    from deftune.cli import main

    monkeypatch.chdir(tmp_path)

    def run(*args):
        capsys.readouterr()  # what the test's own set-up printed
        before = sorted(tmp_path.rglob("*"))
        monkeypatch.setattr(sys, "argv", ["deftune", *map(str, args)])
        with pytest.raises(SystemExit) as info:
            main()
        out, err = capsys.readouterr()
        assert info.value.code == 2, out + err
        assert len(err.strip().splitlines()) == 1 and err.startswith("error: ") and "Traceback" not in err, err
        assert sorted(tmp_path.rglob("*")) == before
        return err.strip().removeprefix("error: ").replace(f"{tmp_path}{os.sep}", "")

    return run


def test_the_installed_entry_point_reports_a_bad_byte_on_one_line(tmp_path, entry_point):
    (tmp_path / "bad.jsonl").write_bytes(ROW + b'{"text": "caf\xe9", "label": "y"}\n')
    result = entry_point("audit", "bad.jsonl", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        "error: bad.jsonl:2: not valid UTF-8 (byte 0xe9 at byte offset 41 of the file); save the file as UTF-8"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl"]


BOM_CRLF_BLANKS = (
    b'\xef\xbb\xbf{"id": "1", "text": "a", "label": "x"}\r\n\r\n  \r\n{"id": "1", "text": "b", "label": "y"}\r\n'
)


@pytest.mark.parametrize(
    "name, content, message",
    [
        # not UTF-8: the line and the byte offset in the file
        (
            "bad.jsonl",
            ROW + b'{"text": "caf\xe9", "label": "y"}\n',
            "bad.jsonl:2: not valid UTF-8 (byte 0xe9 at byte offset 41 of the file); save the file as UTF-8",
        ),
        (
            "bad.csv",
            b"text,label\nok,a\nna\xefve,b\n",
            "bad.csv:3: not valid UTF-8 (byte 0xef at byte offset 18 of the file); save the file as UTF-8",
        ),
        (
            "utf16.jsonl",
            '{"text": "a", "label": "x"}\n'.encode("utf-16"),
            "utf16.jsonl:1: not valid UTF-8 (byte 0xff at byte offset 0 of the file); save the file as UTF-8",
        ),
        # CSV rows with more or fewer fields than the header
        ("bad.csv", b"text,label\nok,a\nhello, world,b\n", "bad.csv:3: row has 3 fields, the header has 2"),
        ("bad.csv", b"text,label\nok,a\nno label\n", "bad.csv:3: row has 1 field, the header has 2"),
        ("bad.csv", b"text,label,text\nok,a,b\n", "bad.csv:1: column 'text' appears twice in the header"),
        # a BOM, CRLF and blank lines are read through: the error is on the right line
        ("bom.jsonl", BOM_CRLF_BLANKS, "bom.jsonl:4:id: duplicate id '1' (first at line 1)"),
        (
            "bom.csv",
            b"\xef\xbb\xbftext,label\r\nok,a\r\n\r\n,b\r\n",
            "bom.csv:4:text: missing value in required field 'text'",
        ),
        # no value in a required field: empty cell, null, NaN, only whitespace; other non-finite numbers
        ("bad.csv", b"text,label\nok,a\nfine,\n", "bad.csv:3:label: missing value in required field 'label'"),
        ("bad.csv", b'text,label\nok,a\n"  ",b\n', "bad.csv:3:text: missing value in required field 'text'"),
        (
            "bad.jsonl",
            ROW + b'{"text": NaN, "label": "y"}\n',
            "bad.jsonl:2:text: missing value in required field 'text'",
        ),
        (
            "bad.jsonl",
            ROW + b'{"text": "b", "label": null}\n',
            "bad.jsonl:2:label: missing value in required field 'label'",
        ),
        (
            "bad.jsonl",
            ROW + b'{"text": " \\t\\n", "label": "y"}\n',
            "bad.jsonl:2:text: missing value in required field 'text'",
        ),
        (
            "bad.jsonl",
            ROW + b'{"text": "b", "label": Infinity}\n',
            "bad.jsonl:2:label: label must be a string (or an integer class id), got float",
        ),
        (
            "chat.jsonl",
            b'{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": " "}]}\n',
            "chat.jsonl:1:messages: no assistant message with content: nothing to train on",
        ),
        # a duplicate id in one file
        (
            "bad.jsonl",
            b'{"id": 7, "text": "a"}\n{"id": "7", "text": "b"}\n',
            "bad.jsonl:2:id: duplicate id '7' (first at line 1)",
        ),
        # nothing to read
        ("empty.jsonl", b"", "empty.jsonl: the file is empty"),
        ("empty.csv", b"", "empty.csv: the file is empty"),
        ("empty.parquet", b"", "empty.parquet: the file is empty"),
        ("blank.jsonl", b"\n\r\n  \n", "blank.jsonl: no records: the file is empty"),
        ("header.csv", b"\xef\xbb\xbftext,label\r\n\r\n", "header.csv: no records: the file is empty"),
        # not JSON, not an object, nested or numbered beyond what a parser takes
        (
            "bad.jsonl",
            ROW + b'{"text": "unterminated\n',
            "bad.jsonl:2: malformed JSON (Unterminated string starting at: column 10)",
        ),
        ("bad.jsonl", ROW + b"[1, 2]\n", "bad.jsonl:2: expected a JSON object (one record per line), got list"),
        (
            "bad.jsonl",
            b"[" * 100_000 + b"\n",
            "bad.jsonl:1: malformed JSON (maximum recursion depth exceeded while decoding a JSON array from a unicode "
            "string)",
        ),
        (
            "bad.jsonl",
            b'{"text": "a", "label": ' + b"1" * 5000 + b"}\n",
            "bad.jsonl:1: malformed JSON (Exceeds the limit (4300 digits) for integer string conversion: value has 5000 "
            "digits; use sys.set_int_max_str_digits() to increase the limit)",
        ),
        (
            "bad.csv",
            b'text,meta\nok,"{""topic"": NaN"\n',
            "bad.csv:2:meta: cell is not valid JSON (Expecting ',' delimiter: column 14)",
        ),
    ],
)
def test_hostile_text_files(tmp_path, deftune, name, content, message):
    (tmp_path / name).write_bytes(content)
    assert deftune("audit", name) == message


@pytest.mark.parametrize(
    "kind, name, content",
    [
        ("JSONL", "big.jsonl", ROW + b'{"text": "' + b"x" * MAX_LINE + b'", "label": "y"}\n'),
        ("CSV", "big.csv", b"text,label\n" + b"x" * MAX_LINE + b",b\n"),
    ],
)
def test_a_line_over_the_cap_is_refused_not_read_whole(tmp_path, deftune, kind, name, content):
    (tmp_path / name).write_bytes(content)
    assert deftune("audit", name) == f"{name}:2: {TOO_LONG.format(kind)}"


def test_a_csv_field_over_the_cap_names_the_row_it_starts_on(tmp_path, deftune):
    """Every line is short, but one quoted field runs over many of them."""
    (tmp_path / "big.csv").write_bytes(
        b'text,label\nok,a\n"' + (b"x" * 1023 + b"\n") * (MAX_LINE // 1024 + 1) + b'",b\n'
    )
    assert deftune("audit", "big.csv") == f"big.csv:3: malformed CSV (field larger than field limit ({MAX_LINE}))"


def test_paths_that_are_no_data_file(tmp_path, deftune):
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "d.jsonl").write_bytes(ROW)
    assert deftune("audit", "folder") == (
        "folder: a folder, but not a saved Hugging Face dataset (no state.json or dataset_dict.json); expected a "
        "data file (.jsonl, .csv, .parquet) or a folder written by save_to_disk"
    )
    (tmp_path / "a.jsonl").symlink_to("b.jsonl")
    (tmp_path / "b.jsonl").symlink_to("a.jsonl")
    assert deftune("audit", "a.jsonl") == "a.jsonl: symbolic link loop (the link never reaches a file)"
    assert deftune("audit", "missing.jsonl") == "missing.jsonl: file not found"


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads files of mode 000")
def test_unreadable_file(tmp_path, deftune):
    (tmp_path / "locked.jsonl").write_bytes(ROW)
    (tmp_path / "locked.jsonl").chmod(0)
    assert deftune("audit", "locked.jsonl") == "locked.jsonl: cannot read the file (Permission denied)"


def test_tables_with_missing_values_and_broken_parquet(tmp_path, deftune):
    import datasets

    rows = {"text": ["a", None], "label": ["x", "y"]}
    pd.DataFrame({"text": ["a", float("nan")], "label": ["x", "y"]}).to_parquet(tmp_path / "nan.parquet")
    assert deftune("audit", "nan.parquet") == "nan.parquet:row 2:text: missing value in required field 'text'"
    pd.DataFrame({"text": ["a", "b"], "label": ["x", None]}).to_parquet(tmp_path / "label.parquet")
    # a field named like a rich emoji code (":label:") is printed as written
    assert deftune("audit", "label.parquet") == "label.parquet:row 2:label: missing value in required field 'label'"
    datasets.Dataset.from_dict(rows).save_to_disk(str(tmp_path / "hf"))
    assert deftune("audit", "hf") == "hf:row 2:text: missing value in required field 'text'"
    (tmp_path / "garbage.parquet").write_bytes(b"PAR1 this is not parquet")
    assert deftune("audit", "garbage.parquet").startswith("garbage.parquet: cannot read Parquet file (")
    pd.DataFrame(rows).to_parquet(tmp_path / "whole.parquet")
    (tmp_path / "cut.parquet").write_bytes((tmp_path / "whole.parquet").read_bytes()[:200])
    assert deftune("audit", "cut.parquet").startswith("cut.parquet: cannot read Parquet file (")
    (tmp_path / "hf" / "state.json").write_text("{")
    assert deftune("audit", "hf").startswith("hf: cannot read saved Hugging Face dataset (")


def test_an_id_in_the_training_and_a_validation_file(tmp_path, deftune):
    (tmp_path / "train.jsonl").write_bytes(b'{"id": "a", "text": "t", "label": "x"}\n' + ROW)
    (tmp_path / "val.jsonl").write_bytes(
        b'\n{"id": "b", "text": "u", "label": "x"}\n{"id": "a", "text": "v", "label": "y"}\n'
    )
    assert deftune("augment", "train.jsonl", "data.validation_path=val.jsonl") == (
        "val.jsonl:3:id: id 'a' is also at train.jsonl:1: ids must be unique across the training, validation and "
        "test files"
    )


def test_bom_crlf_and_blank_lines_load_with_their_line_numbers(tmp_path):
    (tmp_path / "d.jsonl").write_bytes(BOM_CRLF_BLANKS.replace(b'"id": "1", "text": "b"', b'"id": "2", "text": "b"'))
    (tmp_path / "d.csv").write_bytes(b'\xef\xbb\xbf\r\nid,text,label\r\n1,a,x\r\n\r\n2,"two\r\nlines",y\r\n3,c,x')
    (tmp_path / "d.tsv").write_bytes(b"text\tlabel\r\na, b\tx\r\n")
    jsonl, table, tsv = (data.load(str(tmp_path / name)) for name in ("d.jsonl", "d.csv", "d.tsv"))
    assert [(r.id, r.text, r.label, r.source.rsplit(":", 1)[1]) for r in jsonl.records] == [
        ("1", "a", "x", "1"),
        ("2", "b", "y", "4"),
    ]
    assert [(r.id, r.text, r.label, r.source.rsplit(":", 1)[1]) for r in table.records] == [
        ("1", "a", "x", "3"),
        ("2", "two\r\nlines", "y", "5"),
        ("3", "c", "x", "7"),
    ]
    assert [(r.text, r.label) for r in tsv.records] == [("a, b", "x")]


def test_a_csv_field_longer_than_the_csv_modules_default_limit_loads(tmp_path):
    (tmp_path / "d.csv").write_text(f"text,label\n{'word ' * 100_000},x\n", encoding="utf-8")
    assert len(data.load(str(tmp_path / "d.csv")).records[0].text) == 500_000


def test_separate_files_without_ids_are_numbered_apart(tmp_path):
    for name in ("train", "val", "test"):
        (tmp_path / f"{name}.jsonl").write_bytes(ROW * 2)
    cfg = config.load(
        None,
        [
            f"data.path={tmp_path / 'train.jsonl'}",
            f"data.validation_path={tmp_path / 'val.jsonl'}",
            f"data.test_path={tmp_path / 'test.jsonl'}",
        ],
    )
    splits = data.load_splits(cfg.data, seed=0)
    assert {name: [r.id for r in ds.records] for name, ds in splits.items()} == {
        "train": ["0", "1"],
        "validation": ["validation-0", "validation-1"],
        "test": ["test-0", "test-1"],
    }


def test_jsonl_rows_decode_line_by_line_for_every_reader(tmp_path):
    """jsonl_rows also reads benchmark and preference files: the same bounded, per-line decoding."""
    from deftune.core.files import jsonl_rows

    (tmp_path / "p.jsonl").write_bytes(b"\xef\xbb\xbf" + ROW + b"\xff\n")
    rows = jsonl_rows(tmp_path / "p.jsonl")
    assert next(rows) == (1, {"text": "a", "label": "x"})
    with pytest.raises(DataError, match="byte 0xff at byte offset 31"):
        next(rows)


@pytest.mark.parametrize("command", [("train",), ("run",)])
def test_commands_that_write_a_run_fail_on_bad_data_before_writing_it(tmp_path, deftune, command):
    (tmp_path / "bad.jsonl").write_bytes(ROW + b'{"text": "b", "label": null}\n')
    assert deftune(*command, "data.path=bad.jsonl", "run.name=r") == (
        "bad.jsonl:2:label: missing value in required field 'label'"
    )
