"""The base of every settings section: strict keys (a typo fails with a suggestion) and validated assignment.

It sits below the config and the method registry, which both define sections."""

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)
