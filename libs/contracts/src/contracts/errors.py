"""Errors raised when a message does not fit the catalog."""


class ContractError(Exception):
    """Base class for contract violations that are not plain validation errors."""


class UnknownEventType(ContractError, LookupError):
    """The event type is not in the catalog (a typo, or an event this build does not know)."""

    def __init__(self, event_type: object) -> None:
        self.event_type = event_type
        super().__init__(f"unknown event type {event_type!r}: it is not in contracts.catalog.CATALOG")


class UnsupportedEventVersion(ContractError, ValueError):
    """The envelope's ``dataschema`` names a schema version this build cannot read."""

    def __init__(self, event_type: str, got: object, expected: str) -> None:
        self.event_type = event_type
        self.got = got
        self.expected = expected
        super().__init__(f"event {event_type!r} has dataschema {got!r}; this build reads {expected!r}")
