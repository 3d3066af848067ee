"""Shared building blocks of the media gateway's response models."""

from servicekit.schemas import ApiModel  # noqa: F401  (re-exported)
