
import pytest
from typer.testing import CliRunner

from deftune.cli import app
from tests.helpers import classification_file, write_jsonl

runner = CliRunner()



@pytest.mark.parametrize("command", [[], ["train"], ["inspect"], ["export"]])
def test_help_on_every_command(command):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output


@pytest.mark.parametrize("args, message", [
    (["train", "training.lerning_rate=1"], "did you mean 'training.learning_rate'?"),
    (["train", "a.yaml", "b.yaml"], "expected at most one config file"),
    (["train", "model.spec=/nonexistent/model"], "model not found"),
])
def test_user_errors_are_one_line_and_exit_2(args, message, entry_point):
    result = entry_point(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_bad_data_file_error_names_file_line_field(tmp_path, tiny_model, entry_point):
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"text": "ok", "label": "a"}, {"text": "no label"}])
    result = entry_point("inspect", bad, "--model", tiny_model)
    assert result.returncode == 2
    assert f"{bad}:2:label: missing field 'label'" in result.stderr
    assert "Traceback" not in result.stderr


def test_inspect_shows_trained_and_masked_tokens(tmp_path, tiny_model, tokenizer):
    data = classification_file(tmp_path / "topics.jsonl", copies=1)
    result = runner.invoke(app, ["inspect", str(data), "--model", str(tiny_model), "-n", "2"])
    assert result.exit_code == 0, result.output
    n_answer = len(tokenizer("sport", add_special_tokens=False)["input_ids"]) + 1  # the label and EOS
    assert result.output.count("tokens,") == 2 and f"{n_answer} trained" in result.output
    assert "Classify the text" in result.output and "sport" in result.output


def test_train_command_prints_where_the_run_landed(tmp_path, tiny_model):
    data = classification_file(tmp_path / "topics.jsonl", copies=1)
    config = tmp_path / "c.yaml"
    config.write_text(f"model:\n  spec: {tiny_model}\ndata:\n  path: {data}\n")
    result = runner.invoke(app, ["train", str(config), f"run.root={tmp_path}", "run.name=cli",
                                 "training.max_steps=2", "--quiet"])
    assert result.exit_code == 0, result.output
    assert f"run landed in {tmp_path / 'cli'}" in result.output.replace("\n", "")
    assert "'loss'" not in result.output  # --quiet: no per-step log dicts
    assert (tmp_path / "cli" / "train" / "adapter" / "adapter_config.json").is_file()


def test_export_command_and_its_errors(tmp_path, tiny_model, entry_point):
    data = classification_file(tmp_path / "topics.jsonl", copies=1)
    run = tmp_path / "ex"
    assert runner.invoke(app, ["train", f"model.spec={tiny_model}", f"data.path={data}", f"run.root={tmp_path}",
                               "run.name=ex", "training.max_steps=1", "data.split.validation=0", "-q"]).exit_code == 0
    result = runner.invoke(app, ["export", str(run), "--merge"])
    assert result.exit_code == 0 and (run / "export" / "merged" / "config.json").is_file()
    again = entry_point("export", run, "--merge")
    assert again.returncode == 2 and "already exists" in again.stderr
    missing = entry_point("export", tmp_path / "nowhere")
    assert missing.returncode == 2 and "not a deftune run folder" in missing.stderr
