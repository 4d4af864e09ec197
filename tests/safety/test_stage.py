import json

import pytest
from typer.testing import CliRunner

from deftune import config
from deftune.cli import app
from deftune.errors import RunError
from deftune.safety.stage import safety
from deftune.train.recipe import train
from tests.helpers import classification_file

FAST = ["safety.bias_examples=3", "safety.filter_examples=30", "safety.refusal_prompts=2", "safety.batch_size=4"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_model):
    root = tmp_path_factory.mktemp("safety")
    cfg = config.load(
        None,
        [
            f"model.spec={tiny_model}",
            f"data.path={classification_file(root / 'd.jsonl', 1)}",
            f"run.root={root}",
            "run.name=r",
            "training.max_steps=1",
            "training.batch_size=4",
            "data.split.test=0.25",
            *FAST,
        ],
    )
    train(cfg, quiet=True)
    return root / "r"


def test_run_folder_compares_base_and_tuned(tiny_run):
    result = safety(str(tiny_run))
    report = json.loads((tiny_run / "safety" / "safety.json").read_text())
    assert result.systems == ["base", "tuned"] and report["systems"] == ["base", "tuned"]
    assert set(report["bias"]["metrics"]) == {"crows_pairs", "stereoset", "bbq", "winobias"}
    crows = report["bias"]["metrics"]["crows_pairs"]["stereotype_preference"]
    assert crows["base"]["n"] == 3 and "p_value" in crows["change"]
    assert set(report["bias"]["metrics"]["bbq"]) == {
        "accuracy:ambiguous",
        "accuracy:disambiguated",
        "unknown_rate:disambiguated",
    }
    assert report["filters"]["toxic_recall"]["n"] == 30 and report["filters"]["benign_false_positive_rate"]["n"] == 30
    assert report["pii"]["redaction_rate"] >= 0.99
    assert report["answers"]["tuned"]["benign_refusal_rate"]["n"] == 2 and "change" in report["answers"]
    with pytest.raises(RunError, match="already holds results"):
        safety(str(tiny_run))


def test_model_spec_writes_its_own_run(tiny_model, tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "safety",
            str(tiny_model),
            f"run.root={tmp_path}",
            "run.name=m",
            "safety.bias_benchmarks=[winobias]",
            *FAST,
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "m" / "safety" / "safety.json").read_text())
    assert report["systems"] == ["model"] and list(report["bias"]["metrics"]) == ["winobias"]
    assert "toxic prompts flagged" in result.output


def test_screen_command_writes_one_verdict_per_item(tmp_path):
    texts = tmp_path / "t.jsonl"
    texts.write_text('{"id": "a", "text": "hello"}\n{"id": "b", "text": "you f*cking idiot, call 555-123-4567"}\n')
    out = tmp_path / "v.jsonl"
    result = CliRunner().invoke(app, ["screen", str(texts), "--out", str(out)])
    assert result.exit_code == 0, result.output
    first, second = [json.loads(line) for line in out.read_text().splitlines()]
    assert first["id"] == "a" and first["flagged"] is False
    assert second["flagged"] and {"profanity", "insult", "pii"} <= set(second["categories"])
    assert second["redacted"] == "you f*cking idiot, call [PHONE]"
    assert {r["rule"] for r in second["rules"]} >= {"blocklist", "pii:phone"}


@pytest.mark.parametrize(
    "args, message",
    [
        (["screen", "missing.txt"], "missing.txt: file not found"),
        (["screen", "BAD", "safety.classifier_threshold=2"], "safety.classifier_threshold"),
        (["safety", "/nonexistent/model"], "model not found"),
        (["dpo", "missing.jsonl"], "missing.jsonl: file not found"),
    ],
)
def test_user_errors_exit_2_in_one_line(tmp_path, args, message, entry_point):
    bad = tmp_path / "bad.txt"
    bad.write_text("x\n")
    result = entry_point(*[str(bad) if a == "BAD" else a for a in args])
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
