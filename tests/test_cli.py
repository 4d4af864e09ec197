"""The `deftune` command: help, the one grammar (`COMMAND [INPUT] [CONFIG] [key=value ...] [--flags]`), user errors
and the commands that the stage tests do not cover."""

import json
import sys

import pytest
import typer
from typer.testing import CliRunner

from deftune.cli import app, main
from tests.helpers import classification_file, write_jsonl

runner = CliRunner()
COMMANDS = [c.name for c in app.registered_commands]
NO_CONFIG = {"report", "export"}  # they read a finished run folder


@pytest.mark.parametrize("command", [[], *([name] for name in COMMANDS)])
def test_help_on_every_command(command):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output and "--config" not in result.output
    if command:
        assert ("[CONFIG|KEY=VALUE]..." in result.output) == (command[0] not in NO_CONFIG)


def _required(command: str) -> list[str]:
    """A placeholder for each required input and option of `command`."""
    found = []
    for param in typer.main.get_command(app).commands[command].params:
        if param.required:
            found += ["x"] if param.param_type_name == "argument" else [param.opts[0], "x"]
    return found


@pytest.mark.parametrize("command", [name for name in COMMANDS if name not in NO_CONFIG])
def test_every_command_takes_one_config_file_then_overrides(command, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["deftune", command, *_required(command), "a.yaml", "k=v", "b.yaml"])
    with pytest.raises(SystemExit) as info:
        main()
    err = capsys.readouterr().err
    assert info.value.code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith("error: expected at most one config file, got a.yaml, b.yaml"), err


def test_inspect_config_file_and_override_reach_the_rendering(tmp_path, tiny_model):
    data = classification_file(tmp_path / "topics.jsonl", copies=1)
    config = tmp_path / "c.yaml"
    config.write_text(f"model:\n  spec: {tiny_model}\ndata:\n  instruction: Sort this news item. {{text}}\n")
    shown = [
        runner.invoke(app, ["inspect", str(data), str(config), *override, "-n", "1"])
        for override in ([], ["data.instruction=Name the topic of {text}"])
    ]
    assert [r.exit_code for r in shown] == [0, 0], shown[0].output + shown[1].output
    assert "Sort this news item." in shown[0].output and "Name the topic of" not in shown[0].output
    assert "Name the topic of" in shown[1].output and "Sort this news item." not in shown[1].output


def test_balance_config_file_and_override_reach_the_command(tmp_path):
    rows = [
        {"id": str(i), "text": t, "label": y}
        for i, (t, y) in enumerate([("she codes", "tech"), ("he runs", "sport"), ("he codes", "tech")])
    ]
    data, out, config = write_jsonl(tmp_path / "d.jsonl", rows), tmp_path / "out.jsonl", tmp_path / "c.yaml"
    config.write_text("data:\n  balance:\n    strategy: reweight\n")
    result = runner.invoke(
        app, ["balance", str(data), str(config), "data.balance.counterfactual=true", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(written) == 6 and all("weight" in r["meta"] for r in written)  # swapped copies, then weights


@pytest.mark.processes
def test_plan_config_file_and_override_reach_the_plan(tmp_path, tiny_model):
    data = classification_file(tmp_path / "topics.jsonl", copies=1)
    config = tmp_path / "c.yaml"
    config.write_text(f"model:\n  spec: {tiny_model}\ndata:\n  path: {data}\nrun:\n  root: {tmp_path}\n")
    result = runner.invoke(app, ["plan", str(config), "run.name=p", "data.max_length=64", "--quiet"])
    assert result.exit_code == 0, result.output
    written = (tmp_path / "p" / "config.yaml").read_text()
    assert f"spec: {tiny_model}" in written and "max_length: 64" in written


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "training.lerning_rate=1"], "did you mean 'training.learning_rate'?"),
        (["train", "a.yaml", "b.yaml"], "expected at most one config file"),
        (["train", "model.spec=/nonexistent/model"], "model not found"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(args, message, entry_point):
    result = entry_point(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_bad_data_file_error_names_file_line_field(tmp_path, tiny_model, entry_point):
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"text": "ok", "label": "a"}, {"text": "no label"}])
    result = entry_point("inspect", bad, f"model.spec={tiny_model}")
    assert result.returncode == 2
    assert f"{bad}:2:label: missing field 'label'" in result.stderr
    assert "Traceback" not in result.stderr


def test_inspect_shows_trained_and_masked_tokens(tmp_path, tiny_model, tokenizer):
    data = classification_file(tmp_path / "topics.jsonl", copies=1)
    result = runner.invoke(app, ["inspect", str(data), f"model.spec={tiny_model}", "-n", "2"])
    assert result.exit_code == 0, result.output
    n_answer = len(tokenizer("sport", add_special_tokens=False)["input_ids"]) + 1  # the label and EOS
    assert result.output.count("tokens,") == 2 and f"{n_answer} trained" in result.output
    assert "Classify the text" in result.output and "sport" in result.output


def test_train_command_prints_where_the_run_landed(tmp_path, tiny_model):
    data = classification_file(tmp_path / "topics.jsonl", copies=1)
    config = tmp_path / "c.yaml"
    config.write_text(f"model:\n  spec: {tiny_model}\ndata:\n  path: {data}\n")
    result = runner.invoke(
        app, ["train", str(config), f"run.root={tmp_path}", "run.name=cli", "training.max_steps=2", "--quiet"]
    )
    assert result.exit_code == 0, result.output
    assert f"run landed in {tmp_path / 'cli'}" in result.output.replace("\n", "")
    assert "'loss'" not in result.output  # --quiet: no per-step log dicts
    assert (tmp_path / "cli" / "train" / "adapter" / "adapter_config.json").is_file()


def test_export_command_and_its_errors(tmp_path, tiny_model, entry_point):
    data = classification_file(tmp_path / "topics.jsonl", copies=1)
    run = tmp_path / "ex"
    assert (
        runner.invoke(
            app,
            [
                "train",
                f"model.spec={tiny_model}",
                f"data.path={data}",
                f"run.root={tmp_path}",
                "run.name=ex",
                "training.max_steps=1",
                "data.split.validation=0",
                "-q",
            ],
        ).exit_code
        == 0
    )
    result = runner.invoke(app, ["export", str(run), "--merge"])
    assert result.exit_code == 0 and (run / "export" / "merged" / "config.json").is_file()
    again = entry_point("export", run, "--merge")
    assert again.returncode == 2 and "already exists" in again.stderr
    missing = entry_point("export", tmp_path / "nowhere")
    assert missing.returncode == 2 and "not a deftune run folder" in missing.stderr
