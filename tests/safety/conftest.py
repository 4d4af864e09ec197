import pytest
import torch


@pytest.fixture
def tiny(tiny_model):
    """A fresh copy of the tiny random model (tests here change its weights) and its tokenizer."""
    from deftune.core import models

    return models.load(str(tiny_model))


def teach(model, tokenizer, texts: list[str], steps: int = 8, lr: float = 3e-2) -> None:
    """Make the model prefer `texts`: a few steps of plain language-model training on them."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        for text in texts:
            ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
            loss = model(input_ids=ids, labels=ids).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    model.eval()
