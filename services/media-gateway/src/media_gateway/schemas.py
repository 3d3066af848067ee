"""Shared building blocks of the media gateway's response models."""

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class ApiModel(BaseModel):
    """camelCase on the wire (API.md), snake_case in Python."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)
