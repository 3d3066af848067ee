"""Shared runtime of the platform services. See docs/service-runtime.md."""
