"""`deftune augment` end to end on the tiny model, and its user errors (one line, exit 2)."""

import json

from typer.testing import CliRunner

from deftune.cli import app
from tests.helpers import classification_file, write_jsonl

runner = CliRunner()


def test_augment_writes_variants_rejections_and_summary(tmp_path, tiny_model):
    data = classification_file(tmp_path / "topics.jsonl", copies=2)
    result = runner.invoke(
        app,
        [
            "augment",
            str(data),
            f"model.spec={tiny_model}",
            f"run.root={tmp_path}",
            "run.name=aug",
            "data.augment.methods=[paraphrase]",
            "data.augment.candidates=1",
            "data.augment.max_new_tokens=8",
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    out = tmp_path / "aug" / "augment"
    summary = json.loads((out / "summary.json").read_text())
    train_ids = {json.loads(line)["id"] for line in data.read_text().splitlines()}
    n_train = summary["training_records"]
    assert summary["eval_records"] == len(train_ids) - n_train > 0  # the seeded split's validation + test
    assert summary["methods"]["paraphrase"]["candidates"] == n_train
    rows = [
        json.loads(line)
        for name in ("accepted.jsonl", "rejected.jsonl")
        for line in (out / name).read_text().splitlines()
    ]
    assert len(rows) == n_train
    sources = {r["meta"]["augmentation"]["source_id"] for r in rows}
    assert len(sources) == n_train and sources <= train_ids
    assert "passes similarity" in result.output and "accepted" in result.output


def test_malformed_data_is_one_line_naming_file_line_and_field(tmp_path, entry_point):
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"text": "ok", "label": "a"}, {"text": 3, "label": "b"}])
    result = entry_point("augment", bad, f"run.root={tmp_path}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{bad}:2:text: expected a string, got int" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_bad_augment_setting_is_a_config_error(tmp_path, entry_point):
    data = classification_file(tmp_path / "topics.jsonl")
    result = entry_point("augment", data, "data.augment.max_share=1", "data.augment.translatr=llm")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "data.augment.max_share: Input should be less than 1" in result.stderr
    assert "did you mean 'data.augment.translator'?" in result.stderr
