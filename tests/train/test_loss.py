import torch
from transformers import AutoModelForCausalLM

from deftune.data.render import IGNORE, Rendered
from deftune.train.engine import Collator, trained_position_loss


def _batch():
    examples = [
        Rendered("a", [1, 10, 11, 12, 13, 2], [IGNORE, IGNORE, IGNORE, IGNORE, 13, 2]),
        Rendered("b", [1, 20, 21, 2], [IGNORE, IGNORE, 21, 2]),
        Rendered("c", [1, 30, 31, 32, 33, 34, 35, 2], [IGNORE] * 6 + [35, 2]),
    ]
    return Collator(pad_token_id=0)(examples)


def test_trained_position_loss_equals_the_models_own_loss(tiny_model):
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    batch = _batch()
    ours, count = trained_position_loss(model, batch, None)
    reference = model(**batch).loss  # full logits, mean over trained tokens
    assert count == 6
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-6)


def test_accumulated_micro_batches_normalise_by_all_trained_tokens(tiny_model):
    """Two micro-batches with different numbers of trained tokens: summing their losses, each divided by the
    total count, gives exactly the loss of one batch holding both (the accumulation bug of TRL #2175)."""
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    batch = _batch()
    whole, total = trained_position_loss(model, batch, None)
    parts = [{k: v[s] for k, v in batch.items()} for s in (slice(0, 1), slice(1, 3))]
    accumulated = sum(trained_position_loss(model, part, total)[0] for part in parts)
    torch.testing.assert_close(accumulated, whole, rtol=1e-5, atol=1e-6)
    naive = sum(trained_position_loss(model, part, None)[0] for part in parts) / 2
    assert abs(naive.item() - whole.item()) > 1e-4  # averaging per-batch means would be wrong here


def _row_sums(model, batch):
    """Each row's summed cross-entropy over its trained tokens, from the model's full logits."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
    targets = batch["labels"][:, 1:]
    ce = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, ignore_index=IGNORE, reduction="none")
    return ce.sum(1)


def test_example_weights_scale_each_examples_token_losses(tiny_model):
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    examples = [
        Rendered("a", [1, 10, 11, 12, 13, 2], [IGNORE, IGNORE, IGNORE, IGNORE, 13, 2], weight=0.5),
        Rendered("b", [1, 20, 21, 2], [IGNORE, IGNORE, 21, 2]),  # no weight: 1
        Rendered("c", [1, 30, 31, 32, 33, 34, 35, 2], [IGNORE] * 6 + [35, 2], weight=3.0),
    ]
    weighted = Collator(pad_token_id=0)(examples)
    assert weighted["loss_weights"][:, 0].tolist() == [0.5, 1.0, 3.0]
    ours, count = trained_position_loss(model, weighted, None)
    rows = _row_sums(model, weighted)
    torch.testing.assert_close(ours, (0.5 * rows[0] + rows[1] + 3.0 * rows[2]) / 6, rtol=1e-5, atol=1e-6)
    unit = [Rendered(e.id, e.input_ids, e.labels) for e in examples]
    plain, _ = trained_position_loss(model, Collator(pad_token_id=0)(unit), None)
    torch.testing.assert_close(plain, trained_position_loss(model, _batch(), None)[0])


def test_packed_weights_follow_each_example():
    examples = [Rendered("a", [1, 10, 2], [IGNORE, 10, 2]), Rendered("b", [1, 20], [IGNORE, 20], weight=2.0)]
    batch = Collator(pad_token_id=0, packing=True)(examples)
    assert batch["loss_weights"].tolist() == [[1.0, 1.0, 1.0, 2.0, 2.0]]
    assert batch["loss_weights"].shape == batch["labels"].shape
