"""What every model that crosses the wire has in common."""

from datetime import UTC, datetime
from typing import Annotated

import orjson
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, StringConstraints
from pydantic.alias_generators import to_camel


def _as_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


UtcDateTime = Annotated[AwareDatetime, AfterValidator(_as_utc)]
"""An instant with a time zone, normalised to UTC so it serialises as ISO 8601 with ``Z``.

Naive datetimes are refused: a publisher's local clock must never leak onto the wire unlabelled.
"""

Id = Annotated[str, StringConstraints(min_length=1)]
"""An opaque identifier (API.md: ids are opaque strings)."""


class WireModel(BaseModel):
    """Base of every payload, request and reply: camelCase on the wire, snake_case in Python."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        use_attribute_docstrings=True,
        frozen=True,
        # A consumer built against an older catalog must accept the fields a newer publisher
        # adds; additive changes are what lets them ship without a version bump.
        extra="ignore",
    )

    def to_json_bytes(self) -> bytes:
        """The wire form: compact JSON with camelCase field names."""
        return orjson.dumps(self.model_dump(mode="json", by_alias=True))
