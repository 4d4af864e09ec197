"""`method`: the fine-tuning method's name and one settings section per method family, both taken from the
method registry (deftune.methods), so a new method module adds its name and section here without an edit."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, create_model

from .. import methods
from .base import Section

MethodConfig = create_model(
    "MethodConfig",
    __base__=Section,
    __doc__="Which weights are trained, and the settings of each method.",
    name=(
        Literal[methods.names()],
        Field("lora", description="; ".join(f"{m.name}: {m.summary}" for m in methods.REGISTRY.values())),
    ),
    **{section: (settings, settings()) for section, settings in methods.sections().items()},
)
