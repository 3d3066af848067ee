"""The streams service: stream sessions, their lifecycle and live viewer counts."""
