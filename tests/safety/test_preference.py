import json
from pathlib import Path

import pytest

from deftune.config import DpoConfig, SafetyConfig
from deftune.core.precision import choose as choose_precision
from deftune.errors import DataError
from deftune.safety.preference import (
    Pair,
    build_pairs,
    conversational,
    margins,
    read_pairs,
)
from deftune.safety.screen import Screen
from deftune.train.dpo import train_dpo

PAIRS = [
    Pair("How do I pick a lock?", "I can't help with that request.", "Take a tension wrench and rake the pins."),
    Pair("Insult my neighbour", "I can't help with that request.", "Your neighbour is a stupid idiot."),
    Pair("What is 2+2?", "2+2 is 4.", "I can't help with that request."),
    Pair("Tell me a joke", "Why did the chicken cross the road?", "Shut up, idiot."),
]


@pytest.mark.slow
def test_dpo_lowers_the_loss_and_raises_chosen_over_rejected(tiny, tmp_path):
    model, tokenizer = tiny
    before = margins(model, tokenizer, PAIRS)
    result = train_dpo(
        model,
        tokenizer,
        conversational(PAIRS),
        DpoConfig(learning_rate=1e-3),
        tmp_path,
        seed=0,
        compute=choose_precision("fp32"),
        max_steps=4,
        quiet=True,
    )
    after = margins(result["model"], tokenizer, PAIRS)
    assert result["steps"] == 4
    assert result["loss"][-1] < result["loss"][0]
    assert result["reward_margin"][-1] > 0
    assert all(a > b for a, b in zip(after, before))  # every pair: log p(chosen) - log p(rejected) rose


def test_builder_turns_screened_answers_into_pairs():
    prompts = ["Say something rude", "What is your email?", "Capital of France?"]
    answers = ["You are a stupid f*cking idiot.", "Write to me at jo@example.com.", "Paris."]
    pairs = build_pairs(prompts, answers, Screen(SafetyConfig()), "No.")
    assert [(p.prompt, p.chosen, p.rejected) for p in pairs] == [
        ("Say something rude", "No.", "You are a stupid f*cking idiot."),
        ("What is your email?", "Write to me at [EMAIL].", "Write to me at jo@example.com."),
    ]
    assert pairs[0].reason.startswith("blocked: ") and "profanity" in pairs[0].reason
    assert pairs[1].reason == "personal data"
    helpful = build_pairs(
        prompts + ["Write an insult, idiot", "Hi"],
        answers + ["Sure: you fool.", "I'm sorry, no."],
        Screen(SafetyConfig()),
        "No.",
        helpful=True,
    )
    # the clean answer to a safe prompt beats the refusal; a blocked answer still loses; a refusal gives no pair
    assert [(p.chosen, p.rejected, p.reason.split(":")[0]) for p in helpful[2:]] == [
        ("Paris.", "No.", "helpful"),
        ("No.", "Sure: you fool.", "blocked"),
    ]


def test_read_pairs(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(
        "".join(json.dumps({"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected}) + "\n" for p in PAIRS)
    )
    assert read_pairs(path) == PAIRS


@pytest.mark.parametrize(
    "row, where",
    [
        ({"prompt": "p", "chosen": "c"}, ":2:rejected: expected a non-empty string"),
        ({"prompt": "p", "chosen": "", "rejected": "r"}, ":2:chosen: expected a non-empty string"),
        ({"prompt": "p", "chosen": "same", "rejected": "same"}, ":2:rejected: chosen and rejected are the same"),
        (["p", "c", "r"], ":2: expected a JSON object"),
    ],
)
def test_bad_preference_rows_name_line_and_field(tmp_path, row, where):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"prompt": "ok", "chosen": "a", "rejected": "b"}) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(DataError) as exc:
        read_pairs(path)
    assert f"{path}{where}" in str(exc.value)


@pytest.mark.slow
def test_dpo_command_writes_report(tiny_model, tmp_path):
    from typer.testing import CliRunner

    from deftune.cli import app

    path = tmp_path / "p.jsonl"
    path.write_text(
        "".join(json.dumps({"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected}) + "\n" for p in PAIRS)
    )
    result = CliRunner().invoke(
        app,
        [
            "dpo",
            str(path),
            f"model.spec={tiny_model}",
            f"run.root={tmp_path}",
            "run.name=d",
            "safety.refusal_prompts=2",
            "dpo.learning_rate=1e-3",
            "--max-steps",
            "2",
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "d" / "dpo" / "dpo.json").read_text())
    assert report["steps"] == 2 and report["pairs"] == 4
    assert (Path(report["output"]) / "adapter_config.json").is_file()
    assert set(report["over_refusal"]) == {"before", "after"} and report["over_refusal"]["before"]["n"] == 2
