import pytest


@pytest.fixture(scope="session")
def tiny(tiny_model):
    """The tiny random model and its tokenizer, loaded once for the evaluate tests."""
    from deftune import models

    return models.load(str(tiny_model))
