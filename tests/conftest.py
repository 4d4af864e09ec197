import os
import subprocess
import sys

import pytest

# Read by huggingface_hub when it is first imported: tests never reach for the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
if os.environ.get("PYTEST_XDIST_WORKER"):  # parallel workers share the cores: one thread each, no oversubscription
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Every test session converts models into its own cache, never the user's."""
    os.environ["DEFTUNE_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield


@pytest.fixture(scope="session")
def tokenizer():
    from deftune.testing import embedded_tokenizer

    tok = embedded_tokenizer()
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, tokenizer):
    """A folder with a tiny random Llama model and the SmolLM2 tokenizer."""
    from deftune.testing import tiny_model_dir

    return tiny_model_dir(tmp_path_factory.mktemp("tiny") / "model", tokenizer=tokenizer)


@pytest.fixture(scope="session")
def tiny(tiny_model):
    """The tiny random model and its tokenizer, loaded once (tests that change weights take a fresh copy)."""
    from deftune.core import models

    return models.load(str(tiny_model))


@pytest.fixture
def entry_point():
    """`deftune ARGS` as a user runs it, in a subprocess: exit codes and stderr exactly as a user sees them (each
    call pays seconds of imports; tests that use it are marked `processes`)."""

    def run(*args, cwd=None):
        return subprocess.run(
            [sys.executable, "-m", "deftune", *map(str, args)],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=cwd,
            check=False,
        )

    return run


def pytest_collection_modifyitems(items):
    for item in items:
        if "entry_point" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.processes)
