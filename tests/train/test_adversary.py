import json

import numpy as np
import pytest
import torch

from deftune import config
from deftune.errors import ConfigError
from deftune.train.recipe import train
from deftune.train.terms import adversary as debias
from tests.helpers import write_jsonl


@pytest.mark.parametrize("scale", [0.0, 0.5, 2.0])
def test_gradient_reversal_is_identity_forward_and_negated_backward(scale):
    torch.manual_seed(0)
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 4, dtype=torch.float64)
    y = debias.reverse_gradient(x, scale)
    assert torch.equal(y, x)
    (y * w).sum().backward()
    assert torch.allclose(x.grad, -scale * w)


def test_reversed_gradient_is_minus_scale_times_the_finite_difference_gradient():
    torch.manual_seed(0)
    head = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2)).double()
    target = torch.tensor([1, 0])
    x = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)

    def adversary_loss(inp):
        return torch.nn.functional.cross_entropy(head(inp), target)

    adversary_loss(debias.reverse_gradient(x, 0.7)).backward()
    numeric = torch.zeros_like(x)
    eps = 1e-6
    for i in range(x.numel()):
        step = torch.zeros_like(x).view(-1)
        step[i] = eps
        step = step.view_as(x)
        numeric.view(-1)[i] = (adversary_loss(x + step) - adversary_loss(x - step)) / (2 * eps)
    # the features receive the opposite of the adversary's gradient: a descent step makes the adversary worse
    assert torch.allclose(x.grad, -0.7 * numeric, atol=1e-6)
    head_grads = [p.grad for p in head.parameters()]
    assert all(g is not None and g.abs().sum() > 0 for g in head_grads)  # the head itself still learns


def _gendered_data(root):
    rows = [
        {
            "id": f"{g}-{topic}-{i}",
            "text": f"{pronoun} wrote about {topic} number {i}",
            "label": topic,
            "group": {"gender": g},
        }
        for i in range(6)
        for g, pronoun in (("female", "She"), ("male", "He"))
        for topic in ("sport", "tech")
    ]
    return write_jsonl(root / "g.jsonl", rows)


@pytest.mark.parametrize(
    "weight, probe, objective", [(1.0, False, "parity"), (0.0, True, "parity"), (1.0, False, "odds")]
)
def test_training_with_the_adversary_logs_its_accuracy(tiny_model, tmp_path, weight, probe, objective):
    cfg = config.load(
        None,
        [
            f"model.spec={tiny_model}",
            f"data.path={_gendered_data(tmp_path)}",
            f"run.root={tmp_path}",
            "run.name=a",
            "training.max_steps=3",
            "training.batch_size=8",
            "training.batching=fixed",
            "data.split.test=0",
            "data.split.validation=0",
            f"training.adversary.weight={weight}",
            f"training.adversary.probe={probe}",
            f"training.adversary.objective={objective}",
        ],
    )
    train(cfg, quiet=True)
    report = json.loads((tmp_path / "a" / "train" / "adversary.json").read_text())
    assert report["groups"] == ["female", "male"] and report["weight"] == weight
    assert report["chance_accuracy"] == 0.5 and report["group_rows"] == {"female": 12, "male": 12}
    assert 0 <= report["final_accuracy"] <= 1 and len(report["history"]) == 3
    assert report["warmup"]["rows"] == 24 and report["warmup"]["epochs"] == 10
    assert 0 <= report["warmup"]["accuracy"] <= 1
    probe = report["probe"]  # no validation split here: the probe falls back to the training rows
    assert probe["on"] == "train" and probe["rows"] == 24 and probe["chance_accuracy"] == 0.5
    assert 0 <= probe["tuned_accuracy"] <= 1 and 0 <= probe["base_accuracy"] <= 1  # LoRA: base = adapter off
    assert probe["label_only_accuracy"] == pytest.approx(0.5, abs=0.2)  # label and gender independent here
    assert report["objective"] == objective
    assert (tmp_path / "a" / "train" / "checkpoints" / "checkpoint-3" / "adversary.safetensors").is_file()
    steps = [json.loads(line) for line in (tmp_path / "a" / "train" / "metrics.jsonl").read_text().splitlines()]
    assert sum("adversary_accuracy" in s for s in steps) == 3


def test_the_adversary_needs_two_groups_and_unpacked_rows(tiny_model, tmp_path):
    rows = [{"id": str(i), "text": f"plain text {i}", "label": "a" if i % 2 else "b"} for i in range(8)]
    base = [
        f"model.spec={tiny_model}",
        f"run.root={tmp_path}",
        "training.max_steps=1",
        "data.split.test=0",
        "data.split.validation=0",
        "training.adversary.weight=1",
    ]
    cfg = config.load(None, base + [f"data.path={write_jsonl(tmp_path / 'p.jsonl', rows)}", "run.name=x"])
    with pytest.raises(ConfigError, match="at least two 'gender' groups"):
        train(cfg, quiet=True)
    cfg = config.load(None, base + [f"data.path={_gendered_data(tmp_path)}", "run.name=y", "training.packing=true"])
    with pytest.raises(ConfigError, match="packing"):
        train(cfg, quiet=True)


def test_answer_pooling_reads_the_last_prompt_token():
    hidden = torch.arange(2 * 5 * 1, dtype=torch.float).view(2, 5, 1)  # row r, position t -> 5r + t
    mask = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]])
    labels = torch.tensor([[-100, -100, 7, 8, -100], [-100, -100, -100, -100, -100]])
    # row 0: the first trained token is at 2, decided by the state at 1; row 1 trains nothing: its last real token
    assert debias.pool(hidden, mask, labels, "answer").squeeze(1).tolist() == [1.0, 9.0]
    assert debias.pool(hidden, mask, labels, "mean").squeeze(1).tolist() == [1.5, 7.0]


def test_the_probe_reads_a_separable_attribute_and_not_noise():
    rng = np.random.default_rng(0)
    targets = ["f", "m"] * 100
    noise = rng.normal(size=(200, 16))
    separable = noise + np.array([[5.0 if t == "f" else -5.0] + [0.0] * 15 for t in targets])
    assert debias._cv_accuracy(separable, targets, seed=0) == 1.0
    assert abs(debias._cv_accuracy(noise, targets, seed=0) - 0.5) < 0.1


def test_the_adversary_head_round_trips_through_a_checkpoint(tiny_model, tmp_path):
    from deftune.core import models
    from deftune.errors import RunError

    model, _ = models.load(str(tiny_model))
    first = debias.Adversary(model, ["f", "m"], {}, weight=1.0, hidden=8)
    first.history = [{"step": 1, "adversary_accuracy": 0.75, "adversary_loss": 0.5}]
    first.save(tmp_path)
    second = debias.Adversary(model, ["f", "m"], {}, weight=1.0, hidden=8)
    second.restore(tmp_path)
    for a, b in zip(first.head.parameters(), second.head.parameters()):
        assert torch.equal(a, b)
    assert second.history == first.history
    with pytest.raises(RunError, match="saved without the adversary"):
        second.restore(tmp_path / "elsewhere")


def test_the_odds_objective_gives_the_head_the_label(tiny_model, tmp_path):
    from deftune.core import models

    model, _ = models.load(str(tiny_model))
    keys = [(1, 2), (3,), (4, 5, 6)]
    adversary = debias.Adversary(
        model, ["f", "m"], {k: 0 for k in keys}, weight=1.0, hidden=8, row_labels={(1, 2): 0, (3,): 2}, n_labels=3
    )
    assert adversary.head[0].in_features == model.config.hidden_size + 3
    seen = []
    adversary.head[0].register_forward_hook(lambda module, args, out: seen.append(args[0]))
    adversary(torch.zeros(3, model.config.hidden_size), keys)
    labels = seen[0][:, -3:]
    assert labels.tolist() == [[1, 0, 0], [0, 0, 1], [0, 0, 0]]  # the last row's record has no label
    rows = [
        {"id": f"{g}-{i}", "text": f"{p} wrote {i}", "group": {"gender": g}}
        for i in range(4)
        for g, p in (("female", "She"), ("male", "He"))
    ]
    cfg = config.load(
        None,
        [
            f"model.spec={tiny_model}",
            f"data.path={write_jsonl(tmp_path / 't.jsonl', rows)}",
            f"run.root={tmp_path}",
            "run.name=t",
            "training.max_steps=1",
            "data.split.test=0",
            "data.split.validation=0",
            "training.adversary.weight=1",
            "training.adversary.objective=odds",
        ],
    )
    with pytest.raises(ConfigError, match="needs classification data"):
        train(cfg, quiet=True)
