import json

import pytest
from typer.testing import CliRunner

from deftune import data
from deftune.cli import app
from deftune.config import load
from deftune.data.audit import CHECKS, audit
from deftune.data.records import Dataset, Record
from deftune.errors import ConfigError, DataError
from tests.helpers import write_jsonl

from .crafted import classification, codes, sentences


@pytest.mark.slow
def test_bbc_demo_audit_end_to_end(tmp_path, tokenizer):
    cfg = load()
    bbc = data.load("embedded:bbc-news")
    result = audit(
        bbc,
        tokenizer=tokenizer,
        renderer=data.renderer_for(tokenizer, cfg.data, bbc),
        cfg=cfg.data.audit,
        out_dir=tmp_path,
    )
    written = json.loads((tmp_path / "audit.json").read_text())
    assert written == json.loads(json.dumps(result.to_json(), allow_nan=False))
    assert set(written["checks"]) == set(CHECKS) and written["records"] == {"train": 2225, "eval": 0}
    assert written["checks"]["shape"]["labels"]["counts"]["sports"] == 511
    assert written["checks"]["masking"]["failed"] == 0
    assert len(written["checks"]["coverage"]["topics"]) == cfg.data.audit.topics
    assert written["checks"]["labels"]["out_of_sample_accuracy"] > 0.9
    exact = next(f for f in written["findings"] if f["code"] == "exact-duplicates")
    assert exact["severity"] == "warning" and exact["count"] >= 2 and exact["ids"]
    for figure in written["figures"]:
        assert figure["unit"] and all((tmp_path / file).stat().st_size > 0 for file in figure["files"])
    assert {f["name"] for f in written["figures"]} == {"token_lengths", "readability", "topics", "labels", "groups"}


def test_json_is_strict_and_caps_ids_but_not_counts(run_audit):
    texts = sentences("sport", 3)
    records = classification({"sport": texts * 4})  # three groups of four exact duplicates
    finding = next(f for f in run_audit(records, max_ids=2).to_json()["findings"] if f["code"] == "exact-duplicates")
    assert finding["count"] == 12 and len(finding["ids"]) == 2


TINY = {
    "chat": [
        Record(
            str(i),
            "chat",
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": f"Hi number {i}, how are you?"},
                {"role": "assistant", "content": "Fine, thanks!"},
            ],
        )
        for i in range(3)
    ],
    "completion": [Record("1", "completion", prompt="Say hi", completion="hi")],
    "text": [Record("1", "text", text="Just some text."), Record("2", "text", text=" ")],
    "classification": [
        Record("1", "classification", text="x", label="a"),
        Record("2", "classification", text="", label="b"),
    ],
}


@pytest.mark.parametrize("fmt", TINY)
def test_every_format_audits_even_tiny_sets(run_audit, fmt):
    result = run_audit(TINY[fmt], TINY[fmt])
    json.dumps(result.to_json(), allow_nan=False)
    found = codes(result)
    assert set(found["train-eval-overlap"]) == ({"0", "1", "2"} if fmt == "chat" else {"1"})  # empty ones: no leak
    if fmt in ("text", "classification"):  # an empty text, or an empty classification input
        assert found["empty-responses" if fmt == "text" else "empty-prompts"] == ["2"]


@pytest.mark.parametrize(
    "train, evals, message",
    [
        ([], None, "no training records"),
        (
            [Record("1", "classification", text="a b c", label="x")],
            [Record("2", "text", text="a b c")],
            "eval data is text but training data is classification",
        ),
    ],
)
def test_bad_inputs_are_data_errors(tokenizer, renderer, train, evals, message):
    with pytest.raises(DataError, match=message):
        audit(
            Dataset(train, "classification", "t"),
            eval=Dataset(evals, "text", "e") if evals else None,
            tokenizer=tokenizer,
            renderer=renderer,
            cfg=load().data.audit,
        )


def test_unknown_audit_setting_suggests_the_right_key():
    with pytest.raises(ConfigError, match="did you mean 'data.audit.topics'"):
        load(None, ["data.audit.topcs=3"])


@pytest.mark.slow
def test_cli_writes_the_run_folder_and_fails_on_warnings(tmp_path, tiny_model):
    rows = [
        {"id": r.id, "text": r.text, "label": r.label}
        for r in classification({"sport": sentences("sport", 10), "tech": sentences("tech", 10)})
    ]
    train = write_jsonl(tmp_path / "train.jsonl", rows + [{**rows[0], "id": "copy"}])
    evals = write_jsonl(tmp_path / "eval.jsonl", [{**rows[1], "id": "leak"}])
    config = tmp_path / "c.yaml"
    config.write_text(f"model:\n  spec: {tiny_model}\nrun:\n  root: {tmp_path / 'runs'}\n")
    runner = CliRunner()
    args = ["audit", str(train), str(config), "data.audit.cleanlab=false", "--quiet"]
    ok = runner.invoke(app, [*args, "run.name=plain"])
    assert ok.exit_code == 0, ok.output
    assert "exact duplicates" in ok.output  # the findings table
    out = tmp_path / "runs" / "plain" / "audit"
    report = json.loads((out / "audit.json").read_text())
    assert report["summary"]["warning"] >= 1 and (out / "token_lengths.png").exists()
    assert (out / "token_lengths.svg").exists() and (out.parent / "config.yaml").exists()
    assert runner.invoke(app, [*args, "run.name=w", "--fail-on", "warning"]).exit_code == 1
    assert runner.invoke(app, [*args, "run.name=e", "--fail-on", "error"]).exit_code == 0
    leaked = runner.invoke(app, [*args, "run.name=leak", "--eval", str(evals), "--fail-on", "error"])
    assert leaked.exit_code == 1 and "leak" in leaked.output


def test_cli_bad_data_raises_a_data_error(tmp_path, tiny_model):
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"text": "no label", "label": 3.5}])
    result = CliRunner().invoke(app, ["audit", str(bad), f"model.spec={tiny_model}", f"run.root={tmp_path}"])
    assert isinstance(result.exception, DataError) and "label must be a string" in str(result.exception)
