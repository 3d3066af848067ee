"""Local process supervision for the platform's real dependencies and services.

`make run` and the test suite both come through here, so what the tests exercise is what a
developer runs: the same binaries (pip-shipped NATS, PostgreSQL and Valkey; the distribution's
nginx with the RTMP module), the same rendered gateway config, the same service entrypoints.
"""
